"""The heavy path: the import on Apache Spark, for data one machine cannot take.

`job` runs the import's own rules on a Spark cluster (or `local[*]`) and writes the
accounts with their units, the valid deals, the reps and the rejected rows as Parquet;
`analytics.attach` then makes a Territory Atlas database on that output. Only `job` needs
pyspark; `parts` and `output` are plain Python the app can import.
"""
