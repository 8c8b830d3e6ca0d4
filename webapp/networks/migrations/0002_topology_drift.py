from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("networks", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="topology",
            name="drift",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="What the live state lacks of the applied topology (networks.drift).",
            ),
        ),
    ]
