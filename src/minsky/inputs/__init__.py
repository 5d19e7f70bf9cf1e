"""What reaches minsky from outside its control, read within bounds and made safe.

    records    user-supplied record files (JSONL objects or text lines), read the same
               way everywhere: a bad line is an error naming the file and the line
    limits     how deeply a parsed input (a society file, a request body) may nest,
               and TOML parsed within that bound
    safetext   text made safe to store (valid UTF-8) and to show (no terminal escapes)
"""
