"""States stored before agents' frames were checked may hold objects off netcore's schema, which
break the topology page for every viewer: keep only the valid ones. From then on nothing unchecked
is stored, so this runs once."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def drop_objects_off_the_schema(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    from webapp.topology.state import state_clean

    for stored in apps.get_model("topology", "HostState").objects.all():
        clean = state_clean(stored.state)
        if clean != stored.state:
            stored.state = clean
            stored.save(update_fields=["state"])


class Migration(migrations.Migration):
    dependencies = [("topology", "0001_initial")]

    operations = [migrations.RunPython(drop_objects_off_the_schema, migrations.RunPython.noop)]
