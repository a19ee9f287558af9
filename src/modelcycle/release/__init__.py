"""Releases: a registered challenger becomes `champion` by the gates and a person's decision.

`rules` is the pure core (who may decide what); `requests` keeps requests and their decisions in
the store; `registry` moves the MLflow aliases; `service` does both together or not at all.
"""
