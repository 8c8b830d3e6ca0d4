"""Service catalog API: services, their instances (registered with or without a lease), and the
blocking form of the instance list that answers as soon as the catalog changes (as Consul's)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer, error_schema
from webapp.catalog.api.serializers import (
    InstanceDetailSerializer,
    InstanceRegisterSerializer,
    InstanceSerializer,
    ResolveInputSerializer,
    ResolveSerializer,
    ServiceCreateSerializer,
    ServiceRowSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
)
from webapp.catalog.selectors import (
    catalog_index,
    history_of,
    instance_get,
    instance_rows,
    instances_of,
    resolve_plan,
    resolve_report,
    service_get,
    service_list,
)
from webapp.catalog.services import (
    CATALOG_GROUP,
    instance_deregister,
    instance_register,
    instance_renew,
    service_create,
    service_delete,
    service_update,
)
from webapp.errors import HostOffline, InvalidInput
from webapp.hosts.ask import AgentFailed, agent_ask

INDEX_HEADER = "X-Switchboard-Index"
WAIT_DEFAULT, WAIT_MAX = 30.0, 300.0  # seconds a blocking query waits at most
RESOLVE_TIMEOUT = 8.0  # seconds the check waits for the agent's answers (each question: at most 1 s)
_WAIT = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?\Z")
_ERRORS = error_schema(
    {
        400: "A field is wrong (named in `fields`).",
        403: "Not an operator or admin.",
        404: "Unknown service, instance, host, network or node.",
        409: "Clashes with the catalog: a name taken, an address used twice, a VIP in use.",
    }
)


def _indexed(response: Response) -> Response:
    response[INDEX_HEADER] = str(catalog_index())
    return response


def _wait_of(text: str) -> float:
    match = _WAIT.match(text)
    if match is None:
        raise InvalidInput(f"{text!r} is not a duration such as 30s, 500ms or 2m", field="wait")
    value = float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[match.group(2)]
    return min(value, WAIT_MAX)


def _index_of(text: str) -> int:
    if not text.isdigit():
        raise InvalidInput(
            f"{text!r} is not a catalog index (the {INDEX_HEADER} of an answer)", field="index"
        )
    return int(text)


def _blocking_params(request: Request) -> None:
    """Refuse a bad `index` or `wait` before anything waits on them."""
    if "index" in request.query_params:
        _index_of(request.query_params["index"])
    if "wait" in request.query_params:
        _wait_of(request.query_params["wait"])


_BLOCKING = [
    OpenApiParameter("index", OpenApiTypes.INT, description="Wait until the catalog index is past this."),
    OpenApiParameter("wait", OpenApiTypes.STR, description="Longest wait: 30s, 500ms, 2m (at most 300s)."),
]


class _WriteApi(APIView):
    """GET for viewers, writes for operators."""

    def get_permissions(self) -> list[Any]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticated()]
        return [IsAuthenticated(), CanOperate()]


class ServicesApi(_WriteApi):
    @extend_schema(
        summary="Services, with their instances counted by health",
        description="With `index`, a blocking query (as for a service's instances).",
        parameters=[
            OpenApiParameter(name, OpenApiTypes.STR, description=text)
            for name, text in {
                "q": "Name, network or tag contains this.",
                "health": "Only services with an instance in this state.",
                "tag": "Only services with this tag.",
                "network": "Only services on networks of this name.",
                "source": "Only services from this source (api, ui, topology, docker).",
                "host": "Only services of this host.",
            }.items()
        ]
        + _BLOCKING,
        responses={200: ServiceRowSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        _blocking_params(request)
        filters = {
            k: request.query_params.get(k, "") for k in ("q", "health", "tag", "network", "source", "host")
        }
        return _indexed(Response(ServiceRowSerializer(service_list(**filters), many=True).data))

    @extend_schema(
        summary="Create a service on a host's network",
        request=ServiceCreateSerializer,
        responses={201: ServiceSerializer, **_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = ServiceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if v is not None}
        service = service_create(user=request.user, **fields)
        return _indexed(Response(ServiceSerializer(service).data, status=status.HTTP_201_CREATED))


class ServiceApi(_WriteApi):
    @extend_schema(summary="A service", responses={200: ServiceSerializer, 404: ErrorSerializer})
    def get(self, request: Request, name: str) -> Response:
        return _indexed(Response(ServiceSerializer(service_get(name)).data))

    @extend_schema(
        summary="Change a service's port, protocol, VIP, tags, metadata or check",
        request=ServiceUpdateSerializer,
        responses={200: ServiceSerializer, **_ERRORS},
    )
    def patch(self, request: Request, name: str) -> Response:
        data = ServiceUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service = service_update(user=request.user, service=service_get(name), changes=data.validated_data)
        return _indexed(Response(ServiceSerializer(service).data))

    @extend_schema(summary="Remove a service and its instances", responses={204: None, **_ERRORS})
    def delete(self, request: Request, name: str) -> Response:
        service_delete(user=request.user, service=service_get(name))
        return _indexed(Response(status=status.HTTP_204_NO_CONTENT))


class InstancesApi(_WriteApi):
    @extend_schema(
        summary="A service's instances",
        description=(
            "With `passing=1`, only those whose checks pass. With `index` (the X-Switchboard-Index of an "
            "earlier answer), a blocking query: the answer comes once the catalog's index is past it, or "
            "after `wait` (default 30s, at most 300s)."
        ),
        parameters=[
            OpenApiParameter("passing", OpenApiTypes.BOOL, description="Only passing instances."),
            *_BLOCKING,
        ],
        responses={200: InstanceSerializer(many=True), 404: ErrorSerializer},
    )
    def get(self, request: Request, name: str) -> Response:
        _blocking_params(request)
        params = request.query_params
        service = service_get(name)
        passing = params.get("passing", "") in ("1", "true", "yes")
        rows = instance_rows(service, instances_of(service, passing=passing))
        return _indexed(Response(InstanceSerializer(rows, many=True).data))

    @extend_schema(
        summary="Register an instance",
        description="Registering the same instance again renews its lease (200); a new one answers 201.",
        request=InstanceRegisterSerializer,
        responses={201: InstanceSerializer, 200: InstanceSerializer, **_ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        data = InstanceRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service = service_get(name)
        instance, created = instance_register(user=request.user, service=service, **data.validated_data)
        row = instance_rows(service, [instance])[0]
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return _indexed(Response(InstanceSerializer(row).data, status=code))


class InstanceApi(_WriteApi):
    @extend_schema(
        summary="An instance, with its check history",
        responses={200: InstanceDetailSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, name: str, instance: str) -> Response:
        service = service_get(name)
        found = instance_get(service, instance)
        row = {**instance_rows(service, [found])[0], "history": history_of(found)}
        return _indexed(Response(InstanceDetailSerializer(row).data))

    @extend_schema(summary="Deregister an instance", responses={204: None, **_ERRORS})
    def delete(self, request: Request, name: str, instance: str) -> Response:
        service = service_get(name)
        instance_deregister(user=request.user, instance=instance_get(service, instance))
        return _indexed(Response(status=status.HTTP_204_NO_CONTENT))


class InstanceRenewApi(_WriteApi):
    @extend_schema(
        summary="Renew an instance's lease (a heartbeat)",
        request=None,
        responses={200: InstanceSerializer, **_ERRORS},
    )
    def post(self, request: Request, name: str, instance: str) -> Response:
        service = service_get(name)
        renewed = instance_renew(instance=instance_get(service, instance))
        return _indexed(Response(InstanceSerializer(instance_rows(service, [renewed])[0]).data))


class ServiceResolveApi(_WriteApi):
    """The first half of the check: who asks what, and what the catalog says (resolve_plan). The
    `resolve` view below sends it to the host's agent and answers with what the client got beside it."""

    @extend_schema(
        summary="Check the service's names from inside a client's namespace",
        description=(
            "Asks the service's names (A, AAAA, SRV and the RFC 2782 SRV name) from a node of its network, "
            "of the network's DNS, as that node's resolver would, and answers each beside what the catalog "
            "says it should be."
        ),
        request=ResolveInputSerializer,
        responses={200: ResolveSerializer, 503: ErrorSerializer, **_ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        data = ResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(resolve_plan(service_get(name), client=data.validated_data.get("client", "")))


_resolve_plan = sync_to_async(ServiceResolveApi.as_view())


@csrf_exempt
async def resolve(request: HttpRequest, name: str) -> HttpResponse:
    """ServiceResolveApi's plan, asked by the host's agent (webapp.hosts.ask); only this coroutine
    waits for the answer."""
    response = await _resolve_plan(request, name=name)
    if request.method != "POST" or response.status_code != 200:
        return response  # OPTIONS, or refused
    plan = response.data
    question = {"netns": plan["netns"], "server": plan["server"], "questions": plan["questions"]}
    try:
        reply = await agent_ask(
            host_id=plan["host_id"], kind="resolve", request=question, timeout=RESOLVE_TIMEOUT
        )
    except HostOffline as offline:
        return JsonResponse(offline.to_dict(), status=503)
    except AgentFailed as failed:
        return JsonResponse({"error": "AgentError", "message": str(failed)}, status=502)
    return JsonResponse(resolve_report(plan, reply["answers"]))


resolve.cls = ServiceResolveApi  # type: ignore[attr-defined]
resolve.initkwargs = {}  # type: ignore[attr-defined]


def blocking(api: type[APIView]) -> Any:
    """The view of `api`, and its blocking form: with `index` (an earlier answer's
    X-Switchboard-Index), a GET answers once the catalog index passes it (woken by `catalog.changed`
    on the channel layer, so across web workers too) or `wait` runs out. Only a coroutine waits: no
    thread is held (the whole middleware chain is async-capable)."""
    view = sync_to_async(api.as_view())

    @csrf_exempt
    async def answer(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.method != "GET" or "index" not in request.GET:
            return await view(request, **kwargs)
        channels = get_channel_layer()
        channel = await channels.new_channel()
        await channels.group_add(CATALOG_GROUP, channel)  # before the first answer: no change is missed
        try:
            response = await view(request, **kwargs)
            if response.status_code != 200:
                return response
            index = _index_of(request.GET["index"])
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _wait_of(request.GET.get("wait", f"{WAIT_DEFAULT:g}s"))
            while int(response[INDEX_HEADER]) <= index and loop.time() < deadline:
                try:
                    async with asyncio.timeout(deadline - loop.time()):
                        await channels.receive(channel)
                except TimeoutError:
                    pass
                response = await view(request, **kwargs)
                if response.status_code != 200:
                    return response  # what it waited on is gone (404), say
            return response
        finally:
            await channels.group_discard(CATALOG_GROUP, channel)

    answer.cls = api  # type: ignore[attr-defined]  # drf-spectacular and the roles matrix see the API class
    answer.initkwargs = {}  # type: ignore[attr-defined]
    return answer


services = blocking(ServicesApi)
instances = blocking(InstancesApi)
