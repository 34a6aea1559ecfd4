"""What a prediction run hands back to a person: figures, an HTML report and the files of a run.

The report layer reads only the typed results of :mod:`hotspot_erc.engine.prediction` (the
``ConversationPrediction`` that :meth:`hotspot_erc.engine.predict.Predictor.predict` returns); it
imports nothing from the model, so a report can be rebuilt from ``predictions.jsonl`` alone
(:func:`.outputs.read_predictions`).
"""
