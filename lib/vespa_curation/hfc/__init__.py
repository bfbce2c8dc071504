"""The Heliophysics Feature Catalogue (HFC) as a source: its schema, and the embedded
synthetic HFC database the hfc1ar and hfc1t3 services share as their sample."""
