"""The layout of the BASS2000 database as this service reads it: the one place a
curator edits to match the real database (docs/services.md); the embedded sample
follows it."""

#: The source table.
TABLE = "IMAGES"

#: Source layout: logical field (used below) ← column of :data:`TABLE` in the BASS2000
#: database. Edit the right-hand side to match the real database.
LAYOUT = {
    "ID": "ID_IMAGE",                 # integer key (incremental mark)
    "FILENAME": "FILENAME",           # e.g. mh20050419.083000.fits (granule_uid: stem)
    "DATE_OBS": "DATE_OBS",           # start of exposure, UTC
    "DATE_END": "DATE_END",           # end of exposure, UTC (may be NULL)
    "OBSERVATORY": "OBSERVATORY",     # e.g. Meudon
    "INSTRUMENT": "INSTRUMENT",       # e.g. Spectroheliograph
    "FILTER": "FILTER",               # e.g. H-alpha, CaII K3, CaII K1v
    "WAVELENGTH_NM": "WAVELNTH",      # central wavelength, nm
    "BANDWIDTH_NM": "BANDWDTH",       # pass band, nm
    "EXPTIME": "EXPTIME",             # s
    "NAXIS1": "NAXIS1",
    "NAXIS2": "NAXIS2",
    "CDELT1": "CDELT1",               # arcsec per pixel
    "FILE_URL": "URL",                # public URL of the FITS file
    "FILE_SIZE": "FILESIZE",          # bytes
    "FILE_FORMAT": "FORMAT",          # MIME type, e.g. application/fits
    "THUMBNAIL_URL": "THUMBNAIL_URL",  # small JPEG/PNG of the image
    "MODIFIED": "MODIFIED",           # last change of the row, UTC (incremental mark)
}

#: What each logical field may hold (:mod:`vespa_curation.sources.values`): a value its
#: kind cannot hold refuses its image (``source.bad_value``), whatever the database
#: stores.
KINDS = {
    "ID": "int", "FILENAME": "text", "DATE_OBS": "date", "DATE_END": "date",
    "OBSERVATORY": "text", "INSTRUMENT": "text", "FILTER": "text",
    "WAVELENGTH_NM": "float", "BANDWIDTH_NM": "float", "EXPTIME": "float",
    "NAXIS1": "int", "NAXIS2": "int", "CDELT1": "float", "FILE_URL": "text",
    "FILE_SIZE": "int", "FILE_FORMAT": "text", "THUMBNAIL_URL": "text", "MODIFIED": "date",
}
