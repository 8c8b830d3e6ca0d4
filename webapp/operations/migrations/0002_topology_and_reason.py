import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("networks", "0001_initial"),
        ("operations", "0001_initial"),
    ]

    operations = [
        migrations.RenameField(model_name="operation", old_name="topology", new_name="document"),
        migrations.AddField(
            model_name="operation",
            name="topology",
            field=models.ForeignKey(
                blank=True,
                help_text="The desired topology it runs, if queued for one (else a file sent as is).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="operations",
                to="networks.topology",
            ),
        ),
        migrations.AddField(
            model_name="operation",
            name="reason",
            field=models.TextField(blank=True, help_text="Why it was queued, when not asked by a person."),
        ),
    ]
