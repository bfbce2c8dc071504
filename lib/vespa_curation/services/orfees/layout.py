"""The layout of the Nançay ``orfees`` Elasticsearch index as this service reads it:
the one place a curator edits to match the real index (docs/services.md); the
embedded sample follows it."""

#: Source layout: logical field ← ``_source`` field of the index's documents.
LAYOUT = {
    "DATE_OBS": "date_obs",              # start of the spectrum, UTC ISO 8601
    "DATE_END": "date_end",              # end, UTC ISO 8601
    "FILENAME": "file_name",             # e.g. int_orf20120111_075959_0.1.fts
    "FILE_URL": "file_url",              # public URL of the data file
    "FILE_SIZE": "file_size",            # bytes
    "FILE_FORMAT": "file_format",        # MIME type (default application/fits)
    "FREQ_MIN": "freq_min",              # MHz
    "FREQ_MAX": "freq_max",              # MHz
    "TIME_RES": "time_resolution",       # s
    "QUICKLOOK_URL": "quicklook_url",    # PNG quicklook of the spectrum
}

#: What each logical field may hold (:mod:`vespa_curation.sources.values`): a value its
#: kind cannot hold refuses its document (``source.bad_value``).
KINDS = {
    "DATE_OBS": "date", "DATE_END": "date", "FILENAME": "text", "FILE_URL": "text",
    "FILE_SIZE": "int", "FILE_FORMAT": "text", "FREQ_MIN": "float", "FREQ_MAX": "float",
    "TIME_RES": "float", "QUICKLOOK_URL": "text",
}
