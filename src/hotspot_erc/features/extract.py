"""Extract text, audio and video features of a dataset with media into a feature store.

``extract_features(dataset, store_root, config)`` runs, for every dialogue not yet in the store:

1. text, in the main process (:class:`~.text.TextExtractor`; batched across dialogues);
2. audio and video in ``config.workers`` worker processes (both cores by default), one
   (dialogue, modality) per task, so one conversation's audio and video run on different cores
   while the main process does the text: decode (:mod:`~.decode`), then
   :class:`~.audio.AudioExtractor` / :class:`~.video.VideoExtractor` over the dialogue's
   utterances in order (the speaker baselines of the hotspot priors run through the dialogue).
   With ``config.engine="ray"`` these tasks run on Ray actors instead, on this machine or a
   cluster (:mod:`~.ray_engine`); the store is written here all the same.

Where an utterance's media come from: its own ``media`` (a file per utterance, optionally cut by
its ``start``/``end``), else its dialogue's ``media`` cut by ``start``/``end``; a video file's
audio track serves as audio when no audio file is named. A modality that no utterance has media
for is not extracted at all.

Failures never stop the run. A file that cannot be decoded (missing, empty, corrupt, without the
stream asked for), or an utterance whose times lie past the end of its recording, leaves the
affected utterances *missing* for that modality (masked by the model, never zero-filled) and is
recorded as a :class:`Failure` (modality, path, reason, utterance ids). So is media that decodes
but holds nothing to describe: no speech (silence), audio shorter than one analysis window, or
no usable face, as the extractor says per utterance; these come as one :class:`Failure` per
dialogue, modality and reason, listing the utterances, since a silent track or a video without a
face would otherwise be masked unnoticed. Failures are kept in
``<store>/extraction_failures.json`` so the summary after a resumed run still lists them.

Resuming: every dialogue's features are written atomically per modality as soon as the dialogue
is done (:class:`~hotspot_erc.data.store.FeatureStore`), so a killed run resumes with the
dialogues that are not yet complete. The unit of work is the dialogue (per modality), because
the speaker baselines of the priors depend on the utterances before; a kill therefore loses at
most the tasks in flight (two per worker), never a written one, and the resumed store equals an
uninterrupted run's (the extractors are deterministic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.machinery
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hotspot_erc.atomic import write_json
from hotspot_erc.data.corpora import MEDIA_CORPORA
from hotspot_erc.data.dialogue import Dataset, Dialogue, ModalityFeatures, ModalitySpec, Utterance
from hotspot_erc.data.store import FeatureStore, short_digest
from hotspot_erc.features.decode import SAMPLE_RATE, MediaError, cut_audio, load_audio, read_frames

FAILURES_FILE = "extraction_failures.json"
EXTRACT_MODALITIES = ("text", "audio", "video")


@dataclass
class ExtractConfig:
    """What to extract and how.

    Attributes:
        modalities: any of ``text``, ``audio``, ``video`` (a media modality without files is
            skipped).
        text_setting: ``minilm`` or ``large`` (see :mod:`~.text`).
        fps: video frames per second decoded and described (default 15).
        max_width: video is downscaled to at most this width before description (default 480).
        workers: processes for audio and video (default 2; 1 runs in this process).
        audio: keyword options of :class:`~.audio.AudioExtractor` (default: the prosodic and
            spectral descriptors plus the Whisper tiny.en encoder states, ``encoder=
            "whisper-tiny"``, which lift a linear probe on RAVDESS by 15-20 points; see
            docs/results.md).
        video: keyword options of :class:`~.video.VideoExtractor` (``fps`` comes from above).
        engine: where the audio and video tasks run: ``local`` (the process pool above) or
            ``ray`` (``workers`` Ray actors, :mod:`~.ray_engine`; needs ``pip install .[ray]``).
        ray_address: the Ray cluster to join (``engine="ray"``; default: a Ray started here).
    """

    modalities: tuple[str, ...] = EXTRACT_MODALITIES
    text_setting: str = "minilm"
    fps: float = 15.0
    max_width: int = 480
    workers: int = 2
    audio: dict = field(default_factory=lambda: {"encoder": "whisper-tiny"})
    video: dict = field(default_factory=dict)
    engine: str = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        self.modalities = tuple(self.modalities)
        unknown = [m for m in self.modalities if m not in EXTRACT_MODALITIES]
        if unknown or not self.modalities:
            raise ValueError(f"modalities {list(self.modalities)}: expected a non-empty subset "
                             f"of {', '.join(EXTRACT_MODALITIES)}")
        if not self.fps > 0 or self.max_width < 16 or self.workers < 1:
            raise ValueError(f"fps={self.fps}, max_width={self.max_width}, "
                             f"workers={self.workers}: expected fps > 0, max_width >= 16, "
                             "workers >= 1")
        if self.engine not in ("local", "ray") or (self.ray_address and self.engine != "ray"):
            raise ValueError(f"engine={self.engine!r}, ray_address={self.ray_address!r}: "
                             "expected engine local or ray, and an address only with ray")


@dataclass
class Failure:
    """Media that could not be used: which modality and file, why, and for which utterances."""

    modality: str
    path: str
    reason: str
    utterances: list[str]

    def describe(self) -> str:
        shown = ", ".join(self.utterances[:3]) + (" ..." if len(self.utterances) > 3 else "")
        return (f"{self.modality}: {self.path}: {self.reason} "
                f"({len(self.utterances)} utterance(s) left without {self.modality}: {shown})")


@dataclass
class ExtractReport:
    """What a run did: feature keys per modality, dialogues done now, failures, timings."""

    store_root: str
    keys: dict[str, str]
    extracted: int
    already_done: int
    failures: list[Failure]
    seconds: float
    media_seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"feature store {self.store_root}: {self.extracted} dialogue(s) extracted, "
                 f"{self.already_done} already there, in {self.seconds:.1f} s"]
        if self.media_seconds > 0 and self.extracted:
            lines.append(f"media processed: {self.media_seconds:.1f} s "
                         f"(real-time factor {self.seconds / self.media_seconds:.3f})")
        lines += [f"  {modality}: {key}" for modality, key in self.keys.items()]
        if self.failures:
            lines.append(f"{len(self.failures)} media problem(s); the utterances concerned are "
                         "missing that modality:")
            lines += [f"  {failure.describe()}" for failure in self.failures]
        else:
            lines.append("no media problems")
        return "\n".join(lines)


def media_source(dialogue: Dialogue, utterance: Utterance, modality: str
                 ) -> tuple[str | None, bool]:
    """(path, whole_dialogue) of the recording that holds ``modality`` of ``utterance``."""
    fallback = "video" if modality == "audio" else None
    for media, whole in ((utterance.media, False), (dialogue.media, True)):
        for name in (modality, fallback):
            if name and name in media:
                return media[name], whole
    return None, False


def media_modalities(dataset: Dataset) -> list[str]:
    """The media modalities for which at least one utterance has a recording."""
    return [m for m in ("audio", "video")
            if any(media_source(d, u, m)[0] for d in dataset for u in d.utterances)]


def default_modalities(dataset: Dataset, corpus: str | None = None) -> tuple[str, ...]:
    """What to extract when the user does not say: a named media corpus's own modalities
    (:data:`~hotspot_erc.data.corpora.MEDIA_CORPORA`), else text and the media the dataset
    names."""
    if corpus in MEDIA_CORPORA:
        return MEDIA_CORPORA[corpus]
    return ("text", *media_modalities(dataset))


def build_extractors(config: ExtractConfig, modalities: list[str]) -> dict:
    """The extractors ``config`` asks for, by modality, for ``modalities``."""
    extractors = {}
    if "text" in modalities:
        from hotspot_erc.features.text import TextExtractor

        extractors["text"] = TextExtractor(config.text_setting)
    if "audio" in modalities:
        from hotspot_erc.features.audio import AudioExtractor

        extractors["audio"] = AudioExtractor(**config.audio)
    if "video" in modalities:
        from hotspot_erc.features.video import VideoExtractor

        extractors["video"] = VideoExtractor(fps=config.fps, **config.video)
    return extractors


def extract_features(dataset: Dataset, store_root: str | os.PathLike,
                     config: ExtractConfig | None = None, progress: bool = True,
                     extractors: dict | None = None) -> ExtractReport:
    """Extract what the store lacks (see the module docstring) and return the run's report.

    ``extractors`` maps a modality to a ready extractor, used instead of the one ``config``
    describes: extractors rebuilt from a checkpoint's recipes
    (:func:`~.registry.extractors_for`), or an already loaded text extractor to reuse. Video is
    decoded at the video extractor's ``fps``.
    """
    config = config or ExtractConfig()
    began = time.perf_counter()
    store = FeatureStore.create(store_root, dataset)
    wanted_media = [m for m in media_modalities(dataset) if m in config.modalities]
    wanted = wanted_media.copy()
    if "text" in config.modalities and any(u.text.strip() for d in dataset for u in d.utterances):
        wanted.insert(0, "text")
    given = {m: e for m, e in (extractors or {}).items() if m in wanted}
    chosen = {**build_extractors(config, [m for m in wanted if m not in given]), **given}
    extractors = {m: chosen[m] for m in wanted}  # text first, as the store lists modalities
    if "video" in extractors:
        config = dataclasses.replace(config, fps=extractors["video"].fps)
    specs: dict[str, ModalitySpec] = {m: e.spec for m, e in extractors.items()}
    text_extractor = extractors.pop("text", None)
    keys = {m: FeatureStore.features_key(spec) for m, spec in specs.items()}
    failures_path = Path(store_root) / FAILURES_FILE
    failures = _read_failures(failures_path)

    def pending(modality: str) -> list[Dialogue]:
        return [d for d in dataset if not store.has(modality, keys[modality], d.did)]

    done_before = sum(all(store.has(m, keys[m], d.did) for m in keys) for d in dataset)
    extracted: set[str] = set()
    media_seconds = 0.0
    # One task per (dialogue, modality): a dialogue's audio and video run on different cores.
    tasks = [(d, m) for d in dataset for m in wanted_media if not store.has(m, keys[m], d.did)]
    with _media_runner(config)(tasks, extractors, config) as runner:
        # Text runs here while the workers start on the media.
        if text_extractor is not None:
            todo = pending("text")
            with tqdm(total=len(todo), desc="text", unit="dialogue",
                      disable=not progress or not todo) as bar:
                for start in range(0, len(todo), 64):
                    group = todo[start:start + 64]
                    for dialogue, records in zip(
                            group, text_extractor.extract_conversations(group), strict=True):
                        store.write("text", specs["text"], dialogue.did, records)
                        extracted.add(dialogue.did)
                        bar.update(1)
        with tqdm(total=len(tasks), desc="+".join(wanted_media), unit="task",
                  disable=not progress or not tasks) as bar:
            for did, modality, records, new_failures, seconds in runner.results():
                if records is not None:  # None: a failed Ray task, which a rerun retries
                    store.write(modality, specs[modality], did, records)
                    extracted.add(did)
                failures = [f for f in failures if not (f.modality == modality and
                                                        _concerns(f, did, dataset))]
                _write_failures(failures_path, failures + new_failures)
                failures += new_failures
                if modality == "audio" or "audio" not in wanted_media:
                    media_seconds += seconds
                bar.update(1)
    return ExtractReport(store_root=str(store_root), keys=keys, extracted=len(extracted),
                         already_done=done_before, failures=failures,
                         seconds=time.perf_counter() - began, media_seconds=media_seconds)


def load_extracted(store_root: str | os.PathLike, report: ExtractReport) -> Dataset:
    """The dataset of a finished extraction, with the features of ``report.keys``."""
    return FeatureStore(store_root).load_dataset(dict(report.keys))


def _concerns(failure: Failure, did: str, dataset: Dataset) -> bool:
    uids = {u.uid for u in dataset.dialogue(did).utterances}
    return any(uid in uids for uid in failure.utterances)


def _read_failures(path: Path) -> list[Failure]:
    if not path.is_file():
        return []
    import json

    try:
        return [Failure(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError):
        return []  # a damaged log only loses old messages; the features are unaffected


def _write_failures(path: Path, failures: list[Failure]) -> None:
    write_json(path, [asdict(f) for f in failures])


# --- worker side ----------------------------------------------------------------------------

_WORKER_EXTRACTORS: dict = {}


def _worker_init(extractors: dict) -> None:
    """One thread per worker process, so that ``workers`` processes use ``workers`` cores.

    The BLAS and OpenMP pools are limited here at run time (threadpoolctl): a spawned worker has
    already loaded numpy while unpickling ``extractors``, too late for ``OMP_NUM_THREADS``.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER_EXTRACTORS.clear()
    _WORKER_EXTRACTORS.update(extractors)


def _media_runner(config: ExtractConfig) -> type:
    """The runner of the media tasks that ``config.engine`` names."""
    if config.engine == "ray":
        from hotspot_erc.features.ray_engine import RayMediaRunner

        return RayMediaRunner
    return _MediaRunner


class _MediaRunner:
    """Runs (dialogue, modality) tasks in ``config.workers`` processes (or, with one worker, in
    this process: :meth:`_in_this_process`) and yields their results as they finish, in any
    order. At most ``2 * workers`` tasks are in flight, so a kill loses little."""

    def __init__(self, tasks: list[tuple[Dialogue, str]], extractors: dict,
                 config: ExtractConfig) -> None:
        self.tasks = iter(tasks)
        self.extractors = extractors
        self.config = config
        self.pool = None
        self.running: set = set()

    def __enter__(self) -> _MediaRunner:
        if self.config.workers > 1:
            self.pool = ProcessPoolExecutor(
                max_workers=self.config.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init, initargs=(self.extractors,))
            # The pool starts a worker per submission until it has them all: here, all at once.
            # A worker that dies meanwhile breaks the pool, and a later submission fails.
            try:
                with workers_skip_the_calling_script():
                    for _ in range(2 * self.config.workers):
                        if not self._submit_next():
                            break
            except (BrokenProcessPool, OSError) as error:
                self._abandon_pool()
                raise _worker_died() from error
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.pool is None:
            return
        if exc_type is None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        else:
            self._abandon_pool()

    def _abandon_pool(self) -> None:
        """Stop the pool after a failure: its surviving workers are terminated first. Python
        3.11's shutdown joins a manager thread that can wait forever on a worker blocked
        writing a result nobody reads any more (seen once: a killed worker's sibling hung the
        pool's shutdown)."""
        workers = getattr(self.pool, "_processes", None) or {}  # pid -> Process, private
        for process in list(workers.values()):
            if process.is_alive():
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _in_this_process(self):
        """The tasks in this process: each modality's in order on a thread of its own (its
        extractor is never shared between threads), as many modalities at once as torch has
        threads, so one conversation's audio and video are analysed at the same time."""
        import torch

        tasks = list(self.tasks)
        lanes = min(len({modality for _, modality in tasks}), torch.get_num_threads())
        if lanes <= 1:
            for dialogue, modality in tasks:
                yield extract_media_dialogue(dialogue, modality, self.extractors, self.config)
            return
        threads = {modality: ThreadPoolExecutor(max_workers=1, thread_name_prefix=modality)
                   for _, modality in tasks}
        try:
            running = {threads[modality].submit(extract_media_dialogue, dialogue, modality,
                                                self.extractors, self.config)
                       for dialogue, modality in tasks}
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            for pool in threads.values():
                pool.shutdown(wait=True, cancel_futures=True)

    def _submit_next(self) -> bool:
        task = next(self.tasks, None)
        if task is None:
            return False
        self.running.add(self.pool.submit(_worker_task, *task, self.config))
        return True

    def results(self):
        """Yield (did, modality, records, failures, media seconds)."""
        if self.pool is None:
            yield from self._in_this_process()
            return
        try:
            while self.running:
                finished, self.running = wait(self.running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                    self._submit_next()
        except BrokenProcessPool as error:
            raise _worker_died() from error


@contextlib.contextmanager
def workers_skip_the_calling_script():
    """While worker processes start inside it, they do not run the calling script.

    A spawned worker first imports the parent's ``__main__`` (the user's script) as
    ``__mp_main__``: a plain script without an ``if __name__ == "__main__":`` guard would then
    rerun its own prediction in every worker. Our workers need nothing from that script (their
    tasks and extractors are pickled by reference to this package), so while they start, the
    script's module is named after this one (a ``__spec__``, which multiprocessing prefers to
    the file path) and each worker imports this module instead. Scripts run as modules
    (``python -m``, console entry points) already carry a ``__spec__`` and are left alone.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None \
            or not getattr(main, "__file__", None):
        yield
        return
    main.__spec__ = importlib.machinery.ModuleSpec(__name__, None)
    try:
        yield
    finally:
        main.__spec__ = None


def _worker_died() -> RuntimeError:
    return RuntimeError(
        "a worker process of the audio/video extraction ended abruptly: killed (out of "
        "memory?), or, from a script run with `python -m`, rerunning that module (put its "
        "calls under `if __name__ == \"__main__\":`). workers=1 (--workers 1) extracts in "
        "this process.")


def _worker_task(dialogue: Dialogue, modality: str, config: ExtractConfig):
    return extract_media_dialogue(dialogue, modality, _WORKER_EXTRACTORS, config)


def extract_media_dialogue(dialogue: Dialogue, modality: str, extractors: dict,
                           config: ExtractConfig
                           ) -> tuple[str, str, list[ModalityFeatures], list[Failure], float]:
    """Decode and describe one dialogue's ``audio`` or ``video``. Never raises for bad media.

    Returns (dialogue id, modality, one record per utterance, failures, seconds of media).
    """
    segments, problems = (_audio_segments if modality == "audio" else _video_segments)(
        dialogue, config)
    crashed = None
    try:
        records, reasons = extractors[modality].extract_dialogue_with_reasons(segments)
    except (ValueError, FloatingPointError) as error:
        # E.g. non-finite descriptors from a pathological signal: the dialogue loses this
        # modality, the run goes on, and the summary says why.
        crashed = error
    finally:
        if isinstance(segments, DecodedAhead):
            segments = segments.close()
    # Decoding problems first, then what the extractor said: read once decoding is over.
    failures = [Failure(modality, path, reason, uids) for (path, reason), uids in problems.items()]
    if crashed is not None:
        failures.append(Failure(modality, _sources(dialogue, dialogue.utterances, modality),
                                f"extractor failed: {crashed}",
                                [u.uid for u in dialogue.utterances]))
        records = [ModalityFeatures.missing() for _ in dialogue.utterances]
        reasons = [None] * len(dialogue.utterances)
    failures += _nothing_found(dialogue, modality, reasons)
    if modality == "audio":
        seconds = sum(len(s.samples) for s in segments if s.samples is not None) / SAMPLE_RATE
    else:
        seconds = sum(len(s.frames) for s in segments if s.frames is not None) / config.fps
    return dialogue.did, modality, records, failures, seconds


def _sources(dialogue: Dialogue, utterances: list[Utterance], modality: str) -> str:
    """The recordings that hold ``modality`` of ``utterances``, for a :class:`Failure`'s path."""
    paths = sorted({media_source(dialogue, u, modality)[0] or "-" for u in utterances})
    shown = ", ".join(paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _nothing_found(dialogue: Dialogue, modality: str, reasons: list[str | None]
                   ) -> list[Failure]:
    """One :class:`Failure` per reason the extractor gave for leaving decoded media without
    features (no speech, no face, ...), listing the utterances it concerns."""
    grouped: dict[str, list[Utterance]] = {}
    for utterance, reason in zip(dialogue.utterances, reasons, strict=True):
        if reason is not None:
            grouped.setdefault(reason, []).append(utterance)
    return [Failure(modality, _sources(dialogue, utterances, modality), reason,
                    [u.uid for u in utterances]) for reason, utterances in grouped.items()]


def _problem(problems: dict, error: MediaError, uid: str) -> None:
    problems.setdefault((error.path, error.reason), []).append(uid)


def _audio_segments(dialogue: Dialogue, config: ExtractConfig):
    from hotspot_erc.features.audio import AudioSegment

    recordings: dict[str, np.ndarray | MediaError] = {}
    problems: dict[tuple[str, str], list[str]] = {}
    segments = []
    for utterance in dialogue.utterances:
        path, whole = media_source(dialogue, utterance, "audio")
        samples = None
        try:
            if path is None:
                pass
            elif not whole:
                samples = load_audio(path, start=utterance.start, end=utterance.end)
            else:
                if path not in recordings:
                    try:
                        recordings[path] = load_audio(path)
                    except MediaError as error:
                        recordings[path] = error
                recording = recordings[path]
                if isinstance(recording, MediaError):
                    raise recording
                samples = cut_audio(recording, SAMPLE_RATE, utterance.start, utterance.end)
                if samples.size == 0:
                    duration = len(recording) / SAMPLE_RATE
                    raise MediaError(path, f"utterance times {utterance.start:.2f}-"
                                     f"{utterance.end:.2f} s lie past the end of the recording "
                                     f"({duration:.2f} s)")
        except MediaError as error:
            _problem(problems, error, utterance.uid)
            samples = None
        segments.append(AudioSegment(samples=samples, speaker=utterance.speaker))
    return segments, problems


def _video_segments(dialogue: Dialogue, config: ExtractConfig):
    from hotspot_erc.features.decode import probe
    from hotspot_erc.features.video import VideoSegment

    sizes: dict[str, tuple[int, int] | MediaError] = {}
    problems: dict[tuple[str, str], list[str]] = {}

    def decode(utterance: Utterance) -> VideoSegment:
        path, _ = media_source(dialogue, utterance, "video")
        frames = None
        try:
            if path is not None:
                if path not in sizes:
                    try:
                        info = probe(path)
                        if not info.has_video:
                            raise MediaError(path, "no video stream")
                        width = min(config.max_width, info.width)
                        sizes[path] = (width, int(round(info.height * width / info.width / 2)) * 2)
                    except MediaError as error:
                        sizes[path] = error
                size = sizes[path]
                if isinstance(size, MediaError):
                    raise size
                frames = read_frames(path, fps=config.fps, start=utterance.start,
                                     end=utterance.end, width=size[0], height=size[1])
        except MediaError as error:
            _problem(problems, error, utterance.uid)
            frames = None
        return VideoSegment(frames=frames, speaker=utterance.speaker,
                            start=utterance.start or 0.0)

    return DecodedAhead(decode, dialogue.utterances), problems


class DecodedAhead:
    """``decode(item)`` of each item, in order, decoded in a background thread ahead of the
    caller's iteration: ffmpeg decodes in its own process, so the next utterance's frames are
    decoded while the extractor analyses the current one. :meth:`close` decodes what the
    iteration did not reach and returns every result, as if the list had been built first; an
    exception ``decode`` raised comes out of the iteration, or of :meth:`close`."""

    def __init__(self, decode, items) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self._futures = [self._pool.submit(decode, item) for item in items]
        self.decoded: list = []

    def __iter__(self):
        for future in self._futures[len(self.decoded):]:
            self.decoded.append(future.result())
            yield self.decoded[-1]

    def __len__(self) -> int:
        return len(self._futures)

    def close(self) -> list:
        """Every item decoded, in order; the decoding thread ended."""
        try:
            for _ in self:
                pass
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self.decoded


def extract_dataset(dataset: Dataset, config: ExtractConfig | None = None,
                    cache_dir: str | os.PathLike | None = None,
                    folder: str | os.PathLike | None = None, progress: bool = True) -> Dataset:
    """``dataset`` with its features, extracted into a cache folder once and read afterwards.

    Without ``folder`` the store is ``<cache>/features/<name>-<digest>``, the digest covering
    utterance ids, texts, times and media paths, so two corpora under one name never mix. The
    run's media problems are printed to stderr (they are also in the store's failure log).
    """
    from hotspot_erc.features.text_store import default_feature_cache

    config = config or ExtractConfig()
    if folder is None:
        folder = default_feature_cache(f"{dataset.name}-{dataset_digest(dataset)}", cache_dir)
    report = extract_features(dataset, folder, config, progress=progress)
    if report.failures:
        import sys

        print(report.summary(), file=sys.stderr)
    return load_extracted(folder, report)


def dataset_digest(dataset: Dataset) -> str:
    """:func:`~hotspot_erc.data.store.short_digest` of what the features depend on: dialogue and
    utterance ids, texts, times and media paths (and the files' sizes and modification times),
    so an edited transcript or a replaced recording never reads stale features. The one digest
    naming a dataset's cache folder."""
    def stamp(media: dict[str, str]) -> str:
        parts = []
        for modality, path in sorted(media.items()):
            try:
                info = os.stat(path)
                parts.append(f"{modality}={path}:{info.st_size}:{info.st_mtime_ns}")
            except OSError:
                parts.append(f"{modality}={path}:missing")
        return ";".join(parts)

    def lines():
        for dialogue in dataset:
            yield f"{dialogue.did}\t{stamp(dialogue.media)}\n"
            for u in dialogue.utterances:
                yield f"{u.uid}\t{u.text}\t{u.start}\t{u.end}\t{stamp(u.media)}\n"

    return short_digest(lines())
