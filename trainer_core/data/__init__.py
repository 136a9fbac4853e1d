"""From a dataset name or a file to tokenised train/validation splits.

- ``files``: reading CSV / TSV / JSON / JSONL / Parquet tables, with the quirks of real files.
- ``columns``: which column is the text, the pair and the label; row selection; label casting.
- ``sources``: the built-in dataset, Hub datasets and local files as raw training/validation rows.
- ``prepare``: the validation split, caps, tokenising, previews for the form.
"""
