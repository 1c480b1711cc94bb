"""Prices are data: one row per model from a moment on."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class ModelPrice(models.Model):
    """What one Claude model costs from a moment on; a correction is a new row, not an edit."""

    model = models.CharField(max_length=100, help_text="Anthropic model id, e.g. claude-haiku-4-5.")
    input_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million input tokens ($1/MTok = 1000000)."
    )
    output_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million output tokens."
    )
    cache_write_5m_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)],
        help_text="Micro-USD per million tokens written to the 5-minute prompt cache.",
    )
    cache_write_1h_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million tokens written to the 1-hour prompt cache."
    )
    cache_read_per_mtok_micros = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="Micro-USD per million tokens read from the prompt cache."
    )
    effective_from = models.DateTimeField(
        help_text="Messages logged at or after this moment (UTC) are priced with this row."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "support_model_prices"
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="uniq_price_model_effective_from"),
        ]
        indexes = [models.Index(fields=["model", "-effective_from"], name="price_model_eff_idx")]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from:%Y-%m-%d}"
