"""`minsky view`: a local, read-only web viewer over the run log and results files.

`pages.App` turns a path into a page; `server` serves it on loopback, `export` writes
it as a static folder. Nothing here writes to the log.
"""
