"""Image sets: profile a real image set, generate a synthetic one to its profile, validate
quality, fidelity and privacy, and export it in the formats ML teams load. No Dagster here.

- `records`: `ImageRecord`, the one currency between the stages, and the record files (Parquet,
  image bytes in row groups) in which a set is kept between them.
- `sources`: folders, zips, S3 prefixes, Parquet files of image bytes and Hugging Face
  `imagefolder` directories, read as a stream of records.
- `features` / `profile` / `report`: per-image measurements, the set's profile (features
  Parquet, embeddings, profile JSON) and its HTML report.
- `scenes` / `stylegan2` / `generate`: the generation backends behind one interface.
- `validate`: quality, fidelity (synthetic vs real) and privacy measurements.
- `export`: JSONL, Parquet, WebDataset, imagefolder and COCO, to the local store or S3.
"""
