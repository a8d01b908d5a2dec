"""Durable jobs: the SQL job table, the queue interface and the in-process worker pool."""

from brandloop.api.jobs.queue import InProcessQueue, JobQueue
from brandloop.api.jobs.worker import ProvidersFactory, WorkerPool

__all__ = ["InProcessQueue", "JobQueue", "ProvidersFactory", "WorkerPool"]
