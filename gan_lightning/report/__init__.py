"""Ablation reports from sweep folders: ``gan-report <sweep dir>``."""

from gan_lightning.report.build import build_report

__all__ = ["build_report"]
