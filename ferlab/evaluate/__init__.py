"""Evaluation: pure metrics, `evaluate(clf, split) -> EvalReport` and its writers, suites and the leaderboard."""

from ferlab.evaluate.report import EvalReport, evaluate
from ferlab.evaluate.run import evaluate_checkpoint
from ferlab.evaluate.writers import write_report

__all__ = ["EvalReport", "evaluate", "evaluate_checkpoint", "write_report"]
