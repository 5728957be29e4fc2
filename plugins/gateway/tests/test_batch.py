"""Batch inference end to end: the official openai SDK against the Batch API-compatible routes,
with the real jobs plugin running ``gateway.batch`` in its subprocesses, against the fake provider."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from core.testing import serve_in_thread
from plugins.gateway.tests.kit import KEK, configure

FAST_JOBS = {"heartbeat_seconds": 0.2, "lease_seconds": 10.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}
DONE = {"completed", "failed", "cancelled", "expired"}


@pytest.fixture
def server(make_app: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # The job subprocess reads the gateway settings from the environment, as a deployed worker does.
    monkeypatch.setenv("PLUGHOST_GATEWAY_KEK", KEK)
    monkeypatch.setenv("PLUGHOST_GATEWAY_ALLOW_PRIVATE", "true")
    app = make_app(["gateway", "jobs", "workspace"], {"database_url": database_url, "jobs": FAST_JOBS})
    with serve_in_thread(app) as url:
        yield url


def client_for(base: str, workspace: str = "default") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{base}/gateway/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"X-Plughost-Workspace": workspace},
    )


def request_line(custom_id: str, endpoint: str, text: str) -> dict[str, Any]:
    body = {"model": endpoint, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("input.jsonl", io.BytesIO(content)), purpose="batch").id


def wait_until_done(client: openai.OpenAI, batch_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in DONE:
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.05)


def read_jsonl(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_openai_sdk_batch_round_trip_with_a_failing_line(server: str, provider: Any) -> None:
    configure(server, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
    configure(server, provider[0], "broken", [("boom", "openai", "fail-500", 1)])
    client = client_for(server)
    lines = [request_line(f"q{i}", "chat", f"question {i}") for i in range(6)] + [request_line("bad", "broken", "x")]
    input_id = upload(client, lines)
    assert client.files.retrieve(input_id).purpose == "batch"

    batch = client.batches.create(input_file_id=input_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status in ("validating", "in_progress", "completed") and batch.input_file_id == input_id
    batch = wait_until_done(client, batch.id)

    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (7, 6, 1)
    answers = {a["custom_id"]: a for a in read_jsonl(client, batch.output_file_id)}
    assert set(answers) == {f"q{i}" for i in range(6)}
    assert answers["q3"]["response"]["status_code"] == 200
    assert answers["q3"]["response"]["body"]["choices"][0]["message"]["content"] == "echo-gpt: question 3"
    errors = read_jsonl(client, batch.error_file_id)
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("bad", 502)]
    assert "provider exploded" in errors[0]["response"]["body"]["error"]["message"]
    assert [b.id for b in client.batches.list()] == [batch.id]
    # Usage records were written by the job subprocess, as for any other call.
    usage = httpx.get(f"{server}/api/gateway/usage").json()
    assert sorted(r["status"] for r in usage).count(200) == 6

    client.files.delete(input_id)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(input_id)
    assert input_id not in [f.id for f in client.files.list()]


def test_a_batch_can_be_cancelled(server: str, provider: Any) -> None:
    configure(server, provider[0], "slowpoke", [("slow", "openai", "slow", 1)])
    client = client_for(server)
    input_id = upload(client, [request_line(f"s{i}", "slowpoke", "wait") for i in range(4)])
    batch = client.batches.create(
        input_file_id=input_id, endpoint="/v1/chat/completions", completion_window="24h", extra_body={"concurrency": 1}
    )
    deadline = time.monotonic() + 20
    while client.batches.retrieve(batch.id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    assert wait_until_done(client, batch.id).status == "cancelled"


def test_workspaces_see_only_their_own_files_and_batches(server: str, provider: Any) -> None:
    configure(
        server, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)], headers={"X-Plughost-Workspace": "team-a"}
    )
    team_a, team_b = client_for(server, "team-a"), client_for(server, "team-b")
    input_id = upload(team_a, [request_line("a", "chat", "hi")])
    batch = team_a.batches.create(input_file_id=input_id, endpoint="/v1/chat/completions", completion_window="24h")
    done = wait_until_done(team_a, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 1

    with pytest.raises(openai.NotFoundError):
        team_b.files.retrieve(input_id)
    with pytest.raises(openai.NotFoundError):
        team_b.files.content(done.output_file_id)
    with pytest.raises(openai.NotFoundError):
        team_b.batches.retrieve(batch.id)
    with pytest.raises(openai.BadRequestError):
        team_b.batches.create(input_file_id=input_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert team_b.files.list().data == [] and team_b.batches.list().data == []


def test_bad_jsonl_is_refused_naming_the_line(server: str) -> None:
    client = client_for(server)
    good = json.dumps(request_line("a", "chat", "hi"))
    cases = {
        "line 2: not valid JSON": f"{good}\n{{nope\n",
        "line 2: custom_id 'a' is used twice": f"{good}\n{good}\n",
        "line 1: url must be /v1/chat/completions": json.dumps(
            {**request_line("a", "chat", "x"), "url": "/v1/embeddings"}
        ),
        "line 1: body.messages": json.dumps(
            {**request_line("a", "chat", "x"), "body": {"model": "chat", "messages": []}}
        ),
        "no requests": "\n",
        "line 2: nests objects or arrays deeper than 64 levels": f"{good}\n" + "[" * 100_000 + "\n",
    }
    for expected, content in cases.items():
        with pytest.raises(openai.BadRequestError) as raised:
            client.files.create(file=("in.jsonl", io.BytesIO(content.encode())), purpose="batch")
        assert expected in raised.value.message, (expected, raised.value.message)
    assert client.files.list().data == []
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id="file-" + "0" * 32, endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_without_the_jobs_plugin_batches_answer_503(make_app: Any) -> None:
    with serve_in_thread(make_app(["gateway"], {"gateway": {"kek": KEK}})) as url:
        client = client_for(url)
        input_id = upload(client, [request_line("a", "chat", "hi")])
        with pytest.raises(openai.InternalServerError) as raised:
            client.batches.create(input_file_id=input_id, endpoint="/v1/chat/completions", completion_window="24h")
        assert raised.value.status_code == 503 and "jobs plugin" in raised.value.message


def test_batches_work_with_every_plugin_on(make_app: Any, provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches use the jobs plugin's JobsClient, not an in-process HTTP call the security plugin's host check
    refused."""
    monkeypatch.setenv("PLUGHOST_GATEWAY_KEK", KEK)
    monkeypatch.setenv("PLUGHOST_GATEWAY_ALLOW_PRIVATE", "true")
    with serve_in_thread(make_app(None, {"jobs": FAST_JOBS})) as url:
        configure(url, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
        client = client_for(url)
        batch = client.batches.create(
            input_file_id=upload(client, [request_line("a", "chat", "hi")]),
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        assert [listed.id for listed in client.batches.list().data] == [batch.id]
        done = wait_until_done(client, batch.id)
        assert done.status == "completed" and read_jsonl(client, done.output_file_id)[0]["custom_id"] == "a"
        with pytest.raises(openai.BadRequestError, match="already finished"):
            client.batches.cancel(batch.id)
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_" + "0" * 32)


def test_a_batch_job_whose_input_is_not_in_its_workspace_fails_saying_so_without_server_paths(
    server: str, provider: Any, tmp_path: Any
) -> None:
    configure(server, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
    input_id = upload(client_for(server), [request_line("a", "chat", "hi")])
    submitted = httpx.post(
        f"{server}/api/jobs",
        json={"type": "gateway.batch", "params": {"input_file_id": input_id}},
        headers={"X-Plughost-Workspace": "team-b"},
    )
    assert submitted.status_code == 202, submitted.text
    deadline = time.monotonic() + 30
    while (
        job := httpx.get(
            f"{server}/api/jobs/{submitted.json()['id']}", headers={"X-Plughost-Workspace": "team-b"}
        ).json()
    )["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["status"] == "FAILED"
    assert f"no input file {input_id!r} in workspace 'team-b'" in job["error"], job["error"]
    assert str(tmp_path) not in job["error"] and "/" not in job["error"], job["error"]
