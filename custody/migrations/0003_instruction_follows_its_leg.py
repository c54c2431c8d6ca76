"""An instruction follows its leg: done when the leg is confirmed, cancelled
when it failed or was cancelled. Instructions written before this change
stayed ``new`` whatever became of their leg; they are closed here so the
outbox lists only what is due."""

from django.db import migrations, models
from django.db.models import F

ENDED = {"confirmed": "done", "failed": "cancelled", "cancelled": "cancelled"}


def close_ended(apps, schema_editor):
    Instruction = apps.get_model("custody", "Instruction")
    for leg_status, status in ENDED.items():
        Instruction.objects.filter(status__in=["new", "taken"], leg__status=leg_status).update(
            status=status, closed_at=F("created_at")
        )


class Migration(migrations.Migration):
    dependencies = [("custody", "0002_schedules"), ("settlement", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="instruction",
            name="status",
            field=models.CharField(
                choices=[
                    ("new", "new (due: to be sent)"),
                    ("taken", "taken (handed to the custodian)"),
                    ("done", "done (the leg is confirmed)"),
                    ("cancelled", "cancelled (must not be sent)"),
                ],
                default="new",
                max_length=9,
            ),
        ),
        migrations.AddField(
            model_name="instruction",
            name="closed_at",
            field=models.DateTimeField(blank=True, help_text="when it became done or cancelled", null=True),
        ),
        migrations.AddIndex(
            model_name="instruction", index=models.Index(fields=["status"], name="custody_ins_status_9dcd31_idx")
        ),
        migrations.RunPython(close_ended, migrations.RunPython.noop),
    ]
