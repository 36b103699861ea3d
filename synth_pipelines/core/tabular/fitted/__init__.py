"""Tables fitted to a real sample (issue 17): read a sample (`sample_io`), infer its schema
(`infer`), fit a model that keeps no raw rows (`model`, with `marginals` and `copula`), sample it
on the generator's chunked path (`sampler`), and the same for tables joined by keys
(`multitable`).

Nothing is imported here: `schema` imports `model`, which must not import `schema` back.
"""
