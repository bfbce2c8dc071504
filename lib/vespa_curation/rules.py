"""Every rule code the workbench reports, with a sentence a curator can act on.

A quarantine line (``quarantine.csv``) names the rule a record broke by its code; the QA
report prints this catalogue's sentence beside each code it counts, and ``vespa-curate
rules`` lists the whole catalogue. A code not listed here cannot be written into a
quarantine table (:func:`vespa_curation.quarantine.quarantine_frame` refuses it), so the
catalogue is complete by construction: adding a rule means adding its line here.

Codes are ``<family>.<name>``:

``source``
    the source record itself is unusable (no date, no observation, duplicate id, ...);
``chaincode`` / ``geometry`` / ``tfcat``
    the feature's contour cannot be decoded or placed;
``pgsphere``
    the polygon breaks a rule of pgSphere's ``spoly`` (postgrespro/pgsphere,
    src/polygon.c), which would fail DaCHS's whole insert batch;
``epn``
    the row breaks a rule of EPN-TAP 2.0 (IVOA REC 2022-08-22), or a value is longer
    than the published table can index (:mod:`vespa_curation.limits`);
``link``
    a datalink of the row cannot be held by the links table;
``curator`` / ``internal``
    a curator's decision, or a record the code could not map (a bug to report).

QA flags (``qa_geom_flag`` of hfc1ar rows: what the geometry did; ``qa_flags``: quietly
odd records, :mod:`vespa_curation.hfc.oddities`) are catalogued too: they mark accepted
rows a curator may want to look at, not refused ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Rule:
    """One rule: its code, the stage that applies it, and what it means."""

    code: str
    stage: str
    text: str


_RULES = (
    # -- the source records -------------------------------------------------------------
    Rule("source.bad_date", "map", "A date of the record (its observation, start or end) "
         "is unreadable, outside the years 1677-2262, or in the future."),
    Rule("source.time_order", "map", "The record ends before it starts."),
    Rule("source.missing_observation", "map", "The record names an observation "
         "(OBSERVATIONS_ID) that the OBSERVATIONS table does not hold."),
    Rule("source.missing_filename", "map", "The record names no file, so it has no "
         "granule_uid."),
    Rule("source.duplicate_id", "map", "Several records of one harvest carry the same "
         "source id; which one the id names is unknown, so all are refused."),
    Rule("source.no_frequencies", "map", "The record lists no observed frequency."),
    Rule("source.frequency_order", "map", "The record's lowest frequency is above its "
         "highest."),
    Rule("source.bad_value", "map", "A field of the record holds a value its type cannot "
         "hold (text in a number, an infinite number, an id that is not an id)."),
    Rule("source.bad_record", "harvest", "The source gave a record that cannot be read "
         "at all (a truncated line, a document without _id)."),
    Rule("source.bad_file", "map", "A file of the collection cannot be read by its "
         "declared reader (not the format, truncated, a table or variable missing, "
         "unreadable)."),
    Rule("source.no_time", "map", "The file's time axis holds no record."),
    Rule("source.time_not_increasing", "map", "The file's times do not increase from "
         "record to record."),
    Rule("source.no_unit", "map", "The file's frequency axis has no unit."),
    Rule("source.bad_unit", "map", "A VESPA_<column>_unit attribute is not a unit astropy "
         "can read."),
    Rule("source.wrong_product", "map", "The file's name says one product (kind, "
         "target) and its content another."),
    # -- chain codes and the feature's contour ------------------------------------------
    Rule("chaincode.bad_digit", "map", "The chain code holds a character other than the "
         "digits 0-7."),
    Rule("chaincode.length_mismatch", "map", "CC_LENGTH differs from the number of "
         "digits of the chain code."),
    Rule("chaincode.start_off_image", "map", "The chain's start pixel (CC_X_PIX, "
         "CC_Y_PIX) lies outside the image."),
    Rule("chaincode.too_long", "map", "The chain code is longer than any contour the "
         "image can hold."),
    Rule("chaincode.off_image", "map", "The chain leaves the image."),
    Rule("chaincode.not_closed", "map", "The chain does not come back to its start "
         "pixel."),
    Rule("geometry.bad_image", "map", "The observation's image geometry (R_SUN, CDELT, "
         "CENTER) is missing or not positive."),
    Rule("geometry.bad_date", "map", "The observation date is unreadable, so the "
         "observer and the Carrington frame are unknown."),
    Rule("geometry.arcsec_mismatch", "map", "The chain's start pixel, converted with the "
         "detection code's convention, is not where the record's CC_X/Y_ARCSEC put it."),
    Rule("geometry.off_disk", "map", "No part of the region lies on the visible solar "
         "disk."),
    Rule("tfcat.invalid", "map", "The TFCat catalogue is not valid: the Starlink validator "
         "refuses it, or its positions lie outside the coordinates it declares."),
    Rule("tfcat.scale_mismatch", "map", "The chain's start pixel, converted with the "
         "dynamic spectrum's time and frequency scale, is not where the record's "
         "CC_X_UTC/CC_Y_MHZ put it."),
    # -- pgSphere polygons ----------------------------------------------------------------
    Rule("stcs.parse", "validate", "s_region is not an STC-S polygon."),
    Rule("pgsphere.bad_value", "validate", "A vertex coordinate is not finite or lies "
         "beyond ±90° latitude."),
    Rule("pgsphere.vertices", "validate", "The polygon has fewer than 3 distinct or more "
         "than 1024 vertices."),
    Rule("pgsphere.too_large", "validate", "The polygon does not fit inside a "
         "hemisphere."),
    Rule("pgsphere.edge_180", "validate", "The polygon has an edge of 180°."),
    Rule("pgsphere.self_intersection", "validate", "The polygon's edges cross or "
         "overlap."),
    # -- EPN-TAP 2.0 ----------------------------------------------------------------------
    Rule("epn.required", "validate", "A column whose value EPN-TAP requires in every row "
         "is missing or empty."),
    Rule("epn.service_title", "validate", "service_title differs from the schema name."),
    Rule("epn.granule_uid", "validate", "granule_uid holds '#' or is not unique."),
    Rule("epn.vocabulary", "validate", "A value is not in the column's EPN-TAP "
         "vocabulary."),
    Rule("epn.processing_level", "validate", "processing_level is not a CODMAC level "
         "EPN-TAP uses (1, 2, 3, 5, 6)."),
    Rule("epn.time_range", "validate", "time_min or time_max is not a plausible Julian "
         "Date."),
    Rule("epn.minmax_pair", "validate", "Of a min/max pair, one is set and the other "
         "NULL (or one column is absent)."),
    Rule("epn.minmax_order", "validate", "A minimum is above its maximum."),
    Rule("epn.coord_range", "validate", "A body-frame longitude is outside 0-360° or a "
         "latitude outside ±90°."),
    Rule("epn.access", "validate", "access_url, access_format and access_estsize are not "
         "given together, the format is no lower-case MIME type, or the size no "
         "whole kB."),
    Rule("epn.timestamp", "validate", "A date column is not a timestamp, or creation "
         "follows modification."),
    Rule("epn.string", "validate", "A text value has leading or trailing blanks, control "
         "characters, or is a malformed #-list; or a text column holds no text."),
    Rule("epn.too_long", "validate", "A text value is longer than its column allows: a "
         "granule_uid over 512 bytes or a URL over 2048 (PostgreSQL's B-tree indexes "
         "of the published tables hold at most 2704 bytes per entry, and one value "
         "beyond fails the import of its whole file), any other text over 64 kB."),
    Rule("link.too_long", "validate", "A datalink of the granule is longer than the "
         "links table's key can hold (its URL over 2048 bytes, its semantics over 64), "
         "or its content type or description is too long."),
    Rule("epn.orientation", "validate", "The polygon runs clockwise; EPN-TAP wants "
         "counter-clockwise."),
    # -- people and bugs ----------------------------------------------------------------
    Rule("curator.reject", "curate", "A curator rejected the granule "
         "(parameters/decisions/<service>.csv)."),
    Rule("internal.error", "map", "Mapping the record raised an error no rule foresaw: "
         "a bug to report, with the reason's exception."),
    # -- QA flags on accepted rows (qa_geom_flag) ---------------------------------------
    Rule("ok", "qa", "The region's outline needed no change."),
    Rule("limb_clipped", "qa", "The region reaches beyond the limb: its outline was "
         "clipped to the visible disk."),
    Rule("repaired", "qa", "The outline crossed itself in Carrington coordinates and was "
         "repaired."),
    Rule("seam", "qa", "The polygon straddles Carrington longitude 0/360 "
         "(c1min > c1max)."),
    Rule("simplified", "qa", "Vertices within half a pixel of the outline were dropped."),
    # -- QA flags on accepted rows (qa_flags): quietly odd records, published ----------
    Rule("empty_chain", "qa", "The chain code is empty while the catalogue counts more "
         "than one pixel: the published polygon is the start pixel alone."),
    Rule("odd_rsun", "qa", "The image's apparent solar radius (R_SUN x CDELT1) is not "
         "that of an observer near 1 AU: the disk size or pixel scale is wrong, and so "
         "is the observer the polygon was computed for."),
    Rule("before_instrument", "qa", "The observation date is before the instrument's "
         "spacecraft was launched (or before any photograph of the Sun)."),
    Rule("negative_area", "qa", "The catalogue gives the region a negative area."),
    Rule("uid_from_null", "qa", "A pixel coordinate of the region is NULL, so its "
         "granule_uid holds 'na' in its place."),
)

#: The catalogue: code → rule.
RULES: dict[str, Rule] = {r.code: r for r in _RULES}
#: Codes that can refuse a record (everything but the QA flags).
REFUSING = frozenset(r.code for r in _RULES if r.stage != "qa")


class UnknownRule(KeyError):
    """A rule code that the catalogue does not list."""


def rule(code: str) -> Rule:
    """The rule of ``code``; :class:`UnknownRule` naming it when it is not catalogued."""
    try:
        return RULES[code]
    except KeyError:
        raise UnknownRule(f"rule code {code!r} is not in vespa_curation.rules; add it "
                          "there with a sentence") from None


def check(codes: Iterable) -> None:
    """Raise :class:`UnknownRule` for the first refusing code not catalogued."""
    for c in set(codes):
        if c not in REFUSING:
            rule(c)   # raises for an unknown code
            raise UnknownRule(f"{c!r} is a QA flag, not a rule that refuses a record")


def text(code: str) -> str:
    """The sentence of ``code`` ("" for a code not catalogued, e.g. in an old report)."""
    r = RULES.get(code)
    return r.text if r else ""


def describe() -> str:
    """The catalogue as plain text, one rule per line (``vespa-curate rules``)."""
    width = max(len(c) for c in RULES)
    return "\n".join(f"{r.code:<{width}}  {r.stage:<8}  {r.text}" for r in _RULES)
