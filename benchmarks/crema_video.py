"""Cost and output of the video extractor on the CREMA-D clips (prints numbers).

For every ``crema-d/VideoFlash/*.flv`` clip: frames decoded at 15 fps (480x360), the fraction of
frames with a valid face, and the time (s) of the highest hotspot prior. Then the cost per frame
of each stage (FaceMesh, FER expression model, optical flow, whole extractor) in wall-clock ms,
the extractor's CPU time per frame (all threads of the process), and the real-time factor at the
decoding rate (extractor seconds / video seconds; decoding by ffmpeg is reported apart). Models
are loaded, and one clip run, before anything is timed.

    OMP_NUM_THREADS=1 python benchmarks/crema_video.py [--data DIR] [--fps 15] [--repeats 3]

DIR defaults to $HOTSPOT_ERC_DATA, else ../shared/data beside the repository.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("HOTSPOT_ERC_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import cv2
    import numpy as np

    from hotspot_erc.features.decode import read_frames
    from hotspot_erc.features.video import STAGES, VideoExtractor

    cv2.setNumThreads(1)
    clips = sorted((Path(args.data) / "crema-d" / "VideoFlash").glob("*.flv"))
    if not clips:
        raise SystemExit(f"{args.data}/crema-d/VideoFlash: no .flv clips")
    decode_seconds = 0.0
    videos = []
    for clip in clips:
        began = time.perf_counter()
        videos.append(read_frames(clip, fps=args.fps))
        decode_seconds += time.perf_counter() - began
    extractor = VideoExtractor(fps=args.fps)
    extractor.extract_one(videos[0])  # loads the models

    print(f"{'clip':24s} {'frames':>6s} {'size':>8s} {'face':>6s} {'top prior at (s)':>17s}")
    for clip, video in zip(clips, videos, strict=True):
        record = extractor.extract_one(video)
        face = 0.0 if not record.present else float(record.local_mask.mean())
        peak = ("-" if not record.present
                else f"{record.position_times[int(np.argmax(record.prior))]:.2f}")
        height, width = video.frames.shape[1:3]
        print(f"{clip.name:24s} {len(video):6d} {width:4d}x{height:<3d} {face:6.2f} {peak:>17s}")

    totals = dict.fromkeys(STAGES, 0.0)
    cpu = 0.0
    frames = 0
    for _ in range(args.repeats):
        for video in videos:
            extractor.reset_tracking()
            began = time.process_time()
            result = extractor.frame_features(video)
            cpu += time.process_time() - began
            for stage in STAGES:
                totals[stage] += result.timings[stage]
            frames += len(video)
    video_seconds = frames / args.fps
    print(f"\nper frame over {frames} frames ({args.repeats} passes), wall ms:")
    for stage in STAGES:
        print(f"  {stage:10s} {1000 * totals[stage] / frames:6.2f}")
    print(f"  {'cpu total':10s} {1000 * cpu / frames:6.2f}  (process CPU time, all threads)")
    print(f"real-time factor at {args.fps:g} fps: {totals['total'] / video_seconds:.3f} wall, "
          f"{cpu / video_seconds:.3f} CPU")
    clip_seconds = sum(len(video) for video in videos) / args.fps
    print(f"decoding (ffmpeg, not part of the extractor): real-time factor "
          f"{decode_seconds / clip_seconds:.3f}")


if __name__ == "__main__":
    main()
