"""Proposed changes to records (DESIGN section 12): the approval kinds
record_change and network_change, and the append-only table of what each
asks to change, before and after."""

import django.db.models.deletion
from django.db import migrations, models

from controls.migration_helpers import append_only, drop_triggers

TABLES = ("controls_changeproposal",)


class Migration(migrations.Migration):

    dependencies = [
        ('controls', '0002_append_only'),
    ]

    operations = [
        migrations.AlterField(
            model_name='approvalrequest',
            name='kind',
            field=models.CharField(choices=[('leg_confirm', 'Leg Confirm'), ('default', 'Default'), ('claim_payout', 'Claim Payout'), ('reserve_withdrawal', 'Reserve Withdrawal'), ('reserve_reversal', 'Reserve Reversal'), ('cap_change', 'Cap Change'), ('record_change', 'Record Change'), ('network_change', 'Network Change')], max_length=20),
        ),
        migrations.CreateModel(
            name='ChangeProposal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('target', models.CharField(help_text='the model, e.g. "registry.Wallet"', max_length=100)),
                ('object_id', models.CharField(blank=True, help_text="the row's id; blank for a creation", max_length=100)),
                ('natural_key', models.CharField(help_text='the record as people name it', max_length=300)),
                ('operation', models.CharField(choices=[('create', 'Create'), ('update', 'Update'), ('delete', 'Delete')], max_length=6)),
                ('before', models.JSONField(blank=True, null=True)),
                ('after', models.JSONField(blank=True, null=True)),
                ('approval', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='changes', to='controls.approvalrequest')),
            ],
            options={
                'ordering': ['approval_id', 'id'],
                'indexes': [models.Index(fields=['target', 'object_id'], name='controls_ch_target_9e0685_idx')],
            },
        ),
        migrations.RunPython(
            lambda apps, editor: append_only(editor, *TABLES),
            lambda apps, editor: drop_triggers(editor, "append_only", *TABLES),
        ),
    ]
