"""Whether each component answers: HTTP checks on 127.0.0.1, the work pool, free ports."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

import httpx

from rstar.stack.config import MLFLOW, SERVER, TEACHER, WORKER, StackConfig, StackError

# --- health -------------------------------------------------------------------------------


def request(url: str, method: str = "GET", **kwargs: Any) -> httpx.Response | None:
    """A request to one of the stack's servers; None when nothing answers."""
    try:
        return httpx.request(method, url, timeout=3.0, trust_env=False, **kwargs)
    except httpx.HTTPError:
        return None


def prefect_healthy(config: StackConfig) -> bool:
    """The Prefect API answers its health check."""
    response = request(f"{config.prefect_url}/api/health")
    return response is not None and response.status_code == 200 and response.text == "true"


def mlflow_healthy(config: StackConfig) -> bool:
    """The MLflow server answers its health check."""
    response = request(f"{config.mlflow_url}/health")
    return response is not None and response.status_code == 200


def worker_online(config: StackConfig) -> bool:
    """The stack's worker has a recent heartbeat in its work pool (Prefect status ONLINE)."""
    url = f"{config.prefect_url}/api/work_pools/{config.work_pool}/workers/filter"
    response = request(url, "POST", json={})
    if response is None or response.status_code != 200:
        return False
    return any(w["name"] == config.worker_name and w["status"] == "ONLINE" for w in response.json())


def work_pool(config: StackConfig) -> dict[str, Any] | None:
    """The stack's work pool as the Prefect API returns it, or None when it does not exist."""
    response = request(f"{config.prefect_url}/api/work_pools/{config.work_pool}")
    if response is None:
        raise StackError(f"the Prefect server at {config.prefect_url} does not answer")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def teacher_healthy(config: StackConfig) -> bool:
    """The teacher lists its model (or asks for the key it was started with)."""
    response = request(f"{config.teacher_url}/models")
    return response is not None and (
        response.status_code == 200
        or (response.status_code == 401 and config.teacher_api_key_env is not None)
    )


HEALTH: dict[str, Callable[[StackConfig], bool]] = {
    SERVER: prefect_healthy,
    WORKER: worker_online,
    MLFLOW: mlflow_healthy,
    TEACHER: teacher_healthy,
}


def port_free(host: str, port: int) -> bool:
    """Nothing listens on ``host:port`` (TIME_WAIT leftovers of a stopped server are fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise StackError(f"cannot listen on {host}:{port} ({exc}): check --host") from exc
    return True
