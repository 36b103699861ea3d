"""Every partitions definition of the project, defined once and imported where used."""

from __future__ import annotations

import dagster as dg

from synth_pipelines.core.faces.buckets import AGE_GROUPS, GENDERS, Bucket

# Dimension names sort to (age_group, gender): partition keys read like "adult|female".
face_buckets = dg.MultiPartitionsDefinition(
    {
        "gender": dg.StaticPartitionsDefinition(list(GENDERS)),
        "age_group": dg.StaticPartitionsDefinition(list(AGE_GROUPS)),
    }
)


# One partition per dataset request, added by dataset_request_sensor; the key is the request id.
dataset_requests = dg.DynamicPartitionsDefinition(name="dataset_requests")

# One partition per confirmed tabular job, added by tabular_job_sensor; the key is the job id.
tabular_jobs = dg.DynamicPartitionsDefinition(name="tabular_jobs")

# One partition per persona with an upload, added by persona_source_sensor (removed on revocation).
personas = dg.DynamicPartitionsDefinition(name="personas")

# One partition per Flux subject, added by subject_sensor when its photos arrive.
subjects = dg.DynamicPartitionsDefinition(name="subjects")

# One partition per registered image set, added by image_set_sensor; the key is the set's id.
image_sets = dg.DynamicPartitionsDefinition(name="image_sets")


def bucket_for_partition(partition_key: str | dg.MultiPartitionKey) -> Bucket:
    """The Bucket of a face_buckets partition key."""
    if isinstance(partition_key, dg.MultiPartitionKey):
        dims = partition_key.keys_by_dimension
        return Bucket(dims["gender"], dims["age_group"])
    return Bucket.parse(partition_key)


def partition_for_bucket(bucket: Bucket) -> dg.MultiPartitionKey:
    """The face_buckets partition key of a Bucket."""
    return dg.MultiPartitionKey({"gender": bucket.gender, "age_group": bucket.age_group})
