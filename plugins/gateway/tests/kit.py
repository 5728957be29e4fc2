"""Helpers shared by the gateway's tests: the keys, and configuring endpoints through the API."""

from __future__ import annotations

import base64

import httpx
import openai

API_KEY = "sk-provider-secret-0123456789"
KEK = base64.b64encode(bytes(range(32))).decode()


def configure(
    base: str,
    provider_url: str,
    endpoint: str,
    models: list[tuple[str, str, str, int]],
    headers: dict[str, str] | None = None,
) -> None:
    """models: (name, provider, provider's model, weight), in fallback order."""
    client = httpx.Client(base_url=f"{base}/api/gateway", headers=headers or {})
    for provider in {p for _, p, _, _ in models}:
        if client.get(f"/secrets/{provider}-key").status_code == 404:
            url = f"{provider_url}/v1" if provider == "openai" else provider_url
            client.post(
                "/secrets", json={"name": f"{provider}-key", "api_key": API_KEY, "base_url": url}
            ).raise_for_status()
    for name, provider, model, _ in models:
        if client.get(f"/models/{name}").status_code == 404:
            client.post(
                "/models", json={"name": name, "provider": provider, "model": model, "secret": f"{provider}-key"}
            ).raise_for_status()
    members = [{"model": name, "weight": weight} for name, _, _, weight in models]
    client.post("/endpoints", json={"name": endpoint, "models": members}).raise_for_status()


def openai_client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="unused-without-a-token", max_retries=0)
