"""What a prediction run hands back to a person: figures, an HTML report and the files of a run.

The report layer reads only the plain JSON-ready conversation dict of
:meth:`hotspot_erc.engine.predict.Predictor.predict`; it imports nothing from the model or the
engine, so a report can be rebuilt from ``predictions.jsonl`` alone.
"""
