from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0006_docker_kind"),
    ]

    operations = [
        migrations.AlterField(
            model_name="operation",
            name="document",
            field=models.TextField(
                help_text="The topology file text the operation runs;"
                " for a docker or shape operation, its request as JSON."
            ),
        ),
        migrations.AlterField(
            model_name="operation",
            name="kind",
            field=models.CharField(
                choices=[
                    ("plan", "Plan"),
                    ("apply", "Apply"),
                    ("destroy", "Destroy"),
                    ("docker", "Docker"),
                    ("shape", "Shape"),
                ],
                max_length=16,
            ),
        ),
    ]
