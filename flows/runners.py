"""Where a round's shards run (the profile's ``runner:``; rstar/cluster.py).

``thread``: the flow's own ``ThreadPoolTaskRunner``. ``ray``: a ``prefect_ray``
``RayTaskRunner`` connected for the round, each shard a Ray task holding its stage's
resources (``runner.resources``). Either way a shard is a Prefect task run of the round's
flow run, with its result in the flow's result storage, so the UI lists every shard and its
Retry reruns only what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.futures import PrefectFuture
from prefect.settings import get_current_settings
from prefect.tasks import Task

from rstar.cluster import preflight, worker_env
from rstar.config import Profile
from rstar.store import RunLayout

Submit = Callable[[str, Task, dict[str, Any]], PrefectFuture]


def _api_url() -> str:
    """The Prefect API this flow run reports to (a temporary server's too)."""
    with get_client(sync_client=True) as client:
        return str(client.api_url)


def check_runner(prof: Profile) -> None:
    """Before a round does anything: the store and Prefect's result storage are writable and
    the Ray head answers (rstar.cluster.preflight), or a clear error says which is not."""
    results = get_current_settings().results.local_storage_path
    shared = {"the store": RunLayout(prof.run_dir).store.root, "Prefect's results": results}
    preflight(prof.runner, shared)


@contextmanager
def shard_runner(prof: Profile) -> Iterator[Submit]:
    """``submit(stage, task, parameters)`` for the round's shards, on the profile's runner."""
    config = prof.runner
    if config.kind == "thread":
        yield lambda stage, task, parameters: task.submit(**parameters)
        return
    from prefect_ray import RayTaskRunner
    from prefect_ray.context import remote_options

    init: dict[str, Any] = {"runtime_env": {"env_vars": worker_env(_api_url())}}
    if config.address is None:  # a temporary Ray here: no dashboard, this machine's cores
        init |= {"include_dashboard": False}
    with RayTaskRunner(address=config.address, init_kwargs=init) as runner:
        get_run_logger().info("shards run on Ray (%s)", config.address or "a temporary cluster")

        def submit(stage: str, task: Task, parameters: dict[str, Any]) -> PrefectFuture:
            with remote_options(**config.stage(stage).ray_options()):
                return runner.submit(task, parameters)

        yield submit
