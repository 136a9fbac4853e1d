"""From a dataset name or a file to tokenised train/validation splits.

- ``files``: reading CSV / TSV / JSON / JSONL / Parquet tables, with the quirks of real files.
- ``columns``: which column is the text, the pair and the label; row selection; label casting.
- ``prepare``: built-in and Hub datasets, the validation split, tokenising, previews for the form.
"""
