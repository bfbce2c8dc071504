"""Constant columns several services share (``constants={**SOLAR, ...}``)."""
from __future__ import annotations

from typing import Any, Mapping

#: Every service of the Sun.
SOLAR: Mapping[str, Any] = {
    "target_name": "Sun",
    "target_class": "star",
    "time_scale": "UTC",
    "publisher": "PADC",
}

#: The radio instruments of the Nançay observatory (NRH, ORFEES, NDA).
NANCAY_RADIO: Mapping[str, Any] = {
    "messenger": "Radio",
    "instrument_host_name": "Nancay Radio Observatory",
}

#: A service whose coordinates are Carrington longitude and latitude on the Sun
#: (``spatial_frame_type = body``).
CARRINGTON: Mapping[str, Any] = {
    "spatial_coordinate_description": "Carrington",
    "spatial_origin": "Sun",
}
