"""Host presence becomes a lease: `online` (a flag only a clean disconnect cleared) gives way to
`online_until`, renewed by the agent's connection, and `lease_holder`, the connection holding it.
Every host starts offline, until its agent (which reconnects when the web app restarts) says hello."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="host",
            name="online",
        ),
        migrations.AddField(
            model_name="host",
            name="online_until",
            field=models.DateTimeField(
                blank=True,
                help_text="End of the presence lease of the agent's connection, if any.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="host",
            name="lease_holder",
            field=models.CharField(
                blank=True,
                help_text="Channel name of the agent connection that holds the lease.",
                max_length=200,
            ),
        ),
    ]
