"""Schemathesis hooks for .ci/schemathesis (loaded through .ci/schemathesis.toml).

Two rules of the API cannot be written in OpenAPI 3.0, so schemathesis builds
requests that its schema allows and the service rightly refuses:

- POST /release: callback mode takes PlanUrl, ProjectId, HubName, PlanId,
  JobId, TaskInstanceId and AuthToken together, each from a header or a body
  field, with PlanUrl an http(s) URL (a dependency between parameters in
  different places); and the query parameter `mode` and the body field `Mode`
  must agree when both are sent;
- POST /hooks/azure-devops: `resource` is Azure DevOps' free-form payload, and
  which of its fields a handled event type needs depends on `eventType`.

`map_case` makes the callback fields of the valid requests it sends coherent
(most would have some but not all): a partial set is left out, a complete one
gets a usable PlanUrl, and a body `Mode` follows the query's `mode`, so these
requests test the rest of the operation. It
also gives valid requests to /approval the real approval token that
.ci/schemathesis obtains, so they reach an approval instead of a 401.
`filter_failure` drops only the refusals of these two rules ("Schema-valid
request rejected", a 400 invalid-field problem whose detail names the rule);
every other failure is kept, and the run's summary counts what was dropped.
"""

import os
import re
from collections.abc import MutableMapping

import schemathesis
from schemathesis import GenerationMode

INVALID_FIELD = "urn:deploy-gate:problem:invalid-field"
PLAN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~/-]*)?$")
CALLBACK_FIELDS = ("PlanUrl", "ProjectId", "HubName", "PlanId", "JobId", "TaskInstanceId", "AuthToken")


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return case
    if case.operation.label == "POST /release":
        _coherent_callback_fields(case)
    elif case.operation.path == "/approval":
        _real_token(case)
    return case


def _coherent_callback_fields(case):
    headers = case.headers if isinstance(case.headers, MutableMapping) else {}
    body = case.body if isinstance(case.body, MutableMapping) else {}
    query = case.query if isinstance(case.query, MutableMapping) else {}
    if query.get("mode") and body.get("Mode"):
        body["Mode"] = query["mode"]
    # The service takes a body field that is not null, else the header.
    source = {name: body if body.get(name) is not None else headers for name in CALLBACK_FIELDS}

    def sent(name):
        value = source[name].get(name)
        return isinstance(value, str) and value.strip() != ""

    if not all(sent(name) for name in CALLBACK_FIELDS):
        for name in CALLBACK_FIELDS + ("TimelineId",):
            headers.pop(name, None)
            body.pop(name, None)
    elif not PLAN_URL.match(source["PlanUrl"]["PlanUrl"].strip()):
        source["PlanUrl"]["PlanUrl"] = "https://dev.azure.com/contoso/"


def _real_token(case):
    token = os.environ.get("DEPLOY_GATE_SCHEMATHESIS_TOKEN")
    if not token:
        return
    if isinstance(case.query, MutableMapping) and "token" in case.query:
        case.query["token"] = token
    if isinstance(case.body, MutableMapping) and "token" in case.body:
        case.body["token"] = token


def _problem(response):
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("type") == INVALID_FIELD else None


def _unstatable_rule(operation, problem):
    detail = str(problem.get("detail", ""))
    if operation == "POST /release":
        return detail.startswith(
            ("callback mode needs ", "PlanUrl: ", "the query parameter mode and the body field Mode differ")
        )
    if operation == "POST /hooks/azure-devops":
        return detail.startswith("resource/") or detail.split(":")[0] in {
            "ReleaseName",
            "ReleaseId",
            "TeamProject",
            "Stage",
        }
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code != "ST202" or response.status_code != 400:
        return True
    problem = _problem(response)
    return problem is None or not _unstatable_rule(case.operation.label, problem)
