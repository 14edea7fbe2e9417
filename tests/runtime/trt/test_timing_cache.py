"""Timing caches: merged, not overwritten, when builds share a file (stand-in builder config
with TensorRT's ``create_timing_cache`` / ``set_timing_cache`` / ``combine`` semantics)."""

import json
import threading

from fanet.runtime.trt.timing_cache import attach_timing_cache, merge_timing_cache


class StandInCache:
    def __init__(self, gpu, entries=()):
        self.gpu, self.entries = gpu, set(entries)

    def serialize(self):
        return json.dumps({"gpu": self.gpu, "entries": sorted(self.entries)}).encode()

    def combine(self, other, ignore_mismatch):
        if other.gpu != self.gpu and not ignore_mismatch:
            return False
        self.entries |= other.entries
        return True


class StandInConfig:
    """A builder config on ``gpu``; ``learn`` adds what a build would time."""

    def __init__(self, gpu="orin"):
        self.gpu, self.cache = gpu, None

    def create_timing_cache(self, data):
        if not data:
            return StandInCache(self.gpu)
        loaded = json.loads(data)
        return StandInCache(loaded["gpu"], loaded["entries"])

    def set_timing_cache(self, cache, ignore_mismatch):
        if cache.gpu != self.gpu and not ignore_mismatch:
            return False
        self.cache = cache
        return True

    def get_timing_cache(self):
        return self.cache

    def learn(self, *entries):
        self.cache.entries |= set(entries)


def _stored(path):
    return set(json.loads(path.read_bytes())["entries"])


def test_two_builds_sharing_a_cache_keep_what_both_learnt(tmp_path):
    path = tmp_path / "trt.cache"
    first, second = StandInConfig(), StandInConfig()
    attach_timing_cache(first, str(path))
    attach_timing_cache(second, str(path))  # both start before either finishes
    first.learn("conv1", "conv2")
    second.learn("conv2", "attention")
    merge_timing_cache(first, str(path))
    merge_timing_cache(second, str(path))
    assert _stored(path) == {"conv1", "conv2", "attention"}
    third = StandInConfig()
    attach_timing_cache(third, str(path))
    assert third.cache.entries == {"conv1", "conv2", "attention"}


def test_concurrent_merges_lose_nothing(tmp_path):
    path = tmp_path / "trt.cache"
    configs = [StandInConfig() for _ in range(8)]
    for index, config in enumerate(configs):
        attach_timing_cache(config, str(path))
        config.learn(f"layer{index}")
    threads = [threading.Thread(target=merge_timing_cache, args=(c, str(path))) for c in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _stored(path) == {f"layer{i}" for i in range(8)}


def test_a_cache_from_another_gpu_is_replaced_with_a_warning(tmp_path, caplog):
    path = tmp_path / "trt.cache"
    path.write_bytes(StandInCache("nano", ["old"]).serialize())
    config = StandInConfig("orin")
    attach_timing_cache(config, str(path))
    assert config.cache.entries == set() and "another TensorRT or GPU" in caplog.text
    config.learn("new")
    merge_timing_cache(config, str(path))
    assert json.loads(path.read_bytes()) == {"gpu": "orin", "entries": ["new"]}


def test_no_cache_path_does_nothing():
    config = StandInConfig()
    attach_timing_cache(config, None)
    merge_timing_cache(config, None)
    assert config.cache is None
