"""Tables fitted to a real sample (issue 17): read a sample (`sample_io`), infer its schema
(`infer`), fit a model that keeps no raw rows (`model`, with `marginals` and `copula`), sample it
on the generator's chunked path (`sampler`), and the same for tables joined by keys
(`multitable`); judge a generated table against its sample (`metrics`, `privacy`, `utility`,
the HTML report in `report_html`, the checks in `checks`); and the jobs (`jobs`).

Nothing is imported here: `schema` imports `model`, which must not import `schema` back.
"""
