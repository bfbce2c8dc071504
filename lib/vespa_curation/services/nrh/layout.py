"""The layout of the Nançay ``nrh`` Elasticsearch index as this service reads it: the
one place a curator edits to match the real index (docs/services.md); the embedded
sample follows it."""

#: Source layout: logical field ← ``_source`` field of the index's documents.
LAYOUT = {
    "DATE_OBS": "date_obs",              # session start, UTC ISO 8601
    "DATE_END": "date_end",              # session end, UTC ISO 8601
    "FILENAME": "file_name",             # e.g. nrh2_0000_h80_20120111_080500c06_b.fts
    "FILE_URL": "file_url",              # public URL of the data file
    "FILE_SIZE": "file_size",            # bytes
    "FILE_FORMAT": "file_format",        # MIME type (default application/fits)
    "FREQUENCIES": "frequencies",        # list of observed frequencies, MHz
    "INTEGRATION": "integration_time",   # s
    "OBS_MODE": "obs_mode",              # e.g. "2D images"
}

#: What each logical field may hold (:mod:`vespa_curation.sources.values`): a value its
#: kind cannot hold refuses its document (``source.bad_value``). FREQUENCIES, a list or
#: a comma-separated text, is checked by the service.
KINDS = {
    "DATE_OBS": "date", "DATE_END": "date", "FILENAME": "text", "FILE_URL": "text",
    "FILE_SIZE": "int", "FILE_FORMAT": "text", "INTEGRATION": "float", "OBS_MODE": "text",
}

#: NRH observing frequencies (MHz; Hamini et al. 2021, JSWSC 11, 57).
NRH_FREQUENCIES_MHZ = (150.9, 173.2, 228.0, 270.6, 327.0, 408.0, 432.0, 445.0)
