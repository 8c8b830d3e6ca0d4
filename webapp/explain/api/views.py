"""`/api/v1/explain/`: why can (or can't) A reach B on a host, answered by its agent (netcore.explain:
the path walk over the live state, and a probe sent at the same moment, reconciled)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer, error_schema
from webapp.errors import HostOffline
from webapp.explain.api.serializers import ExplainInputSerializer, ExplanationSerializer
from webapp.explain.selectors import explain_destination, explain_source
from webapp.hosts.ask import AgentFailed, agent_ask
from webapp.hosts.selectors import host_get

SLACK = 10.0  # seconds beyond its probes' own time an answer may take (the walk, the snapshot)

_ERRORS = error_schema(
    {
        400: "A field is wrong (named in `fields`), or the agent refused the question (`message` says why).",
        403: "Not an operator or admin.",
        404: "Unknown host, topology node, or namespace (named in `fields` or `message`).",
        503: "The host's agent is not connected.",
    }
)


class ExplainApi(APIView):
    """The first half: the question checked and put as the agent names things. The `explain` view
    below asks the agent and answers with what it found."""

    permission_classes = [CanOperate]

    @extend_schema(
        summary="Why can (or can't) a source reach a destination",
        description=(
            "Walks the path hop by hop over the host's live state (routes asked of each namespace's "
            "kernel, veth peers, bridges and their FDB, VXLAN, the firewall at each hook), and sends a "
            "probe from the source at the same moment (TCP to a port, else ICMP echo). The answer is "
            "REACHABLE, UNREACHABLE or INCONSISTENT (walk and probe disagree), with each hop's verdict and "
            "the cause where it stops."
        ),
        request=ExplainInputSerializer,
        responses={200: ExplanationSerializer, 502: ErrorSerializer, **_ERRORS},
    )
    def post(self, request: Request) -> Response:
        return self._question(request.data)

    @extend_schema(
        summary="Why can (or can't) a source reach a destination (the question in the query)",
        description="The same as POST, with the question's fields as query parameters (a link to keep).",
        parameters=[ExplainInputSerializer],
        responses={200: ExplanationSerializer, 502: ErrorSerializer, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self._question(request.query_params)

    def _question(self, fields: Any) -> Response:
        data = ExplainInputSerializer(data=fields)
        data.is_valid(raise_exception=True)
        question: dict[str, Any] = dict(data.validated_data)
        host = host_get(name=question.pop("host"))
        if not host.online:
            raise HostOffline(f"host {host.name} has no agent connected to ask")
        question["source"] = explain_source(host, question["source"])
        question["destination"] = explain_destination(host, question["destination"])
        return Response({"host_id": host.id, "request": question})


_plan = sync_to_async(ExplainApi.as_view())


@csrf_exempt
async def explain(request: HttpRequest) -> HttpResponse:
    """ExplainApi's question, asked of the host's agent (webapp.hosts.ask)."""
    response = await _plan(request)
    if request.method not in ("GET", "POST") or response.status_code != 200:
        return response  # OPTIONS, or refused
    question = response.data["request"]
    waited = question["count"] * question["timeout"] + SLACK
    try:
        reply = await agent_ask(
            host_id=response.data["host_id"], kind="explain", request=question, timeout=waited
        )
    except HostOffline as offline:
        return JsonResponse(offline.to_dict(), status=503)
    except AgentFailed as failed:  # the agent's own check: no such namespace, a port that is none
        missing = failed.error.get("error") == "NotFound"
        body = {"error": "NotFound" if missing else "InvalidInput", "message": str(failed)}
        return JsonResponse(body, status=404 if missing else 400)
    return JsonResponse(reply["answer"])


explain.cls = ExplainApi  # type: ignore[attr-defined]
explain.initkwargs = {}  # type: ignore[attr-defined]
