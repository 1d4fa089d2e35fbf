"""Frames of an env for ``rl-diffcat evaluate``: a window (``--render``) or MP4 files (``--video``).

Both must work on a headless Linux machine or fail with a message: a MuJoCo window aborts the
process in C without a display, so it is refused first; videos render off-screen. Videos use
gymnasium's ``RecordVideo``, which encodes with moviepy (the ``video`` extra).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Dict, Iterator, List


def headless() -> bool:
    """Linux without an X11 or Wayland display (a server, CI)."""
    return sys.platform.startswith("linux") and not any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY"))


def check_display() -> None:
    """On Linux a window needs a display (X11 or Wayland): without one MuJoCo's viewer aborts the
    process in C, so say so first. ``SDL_VIDEODRIVER`` (pygame's dummy driver, say) counts as one."""
    if headless() and not os.environ.get("SDL_VIDEODRIVER"):
        raise ValueError("--render opens a window, but there is no display (DISPLAY and WAYLAND_DISPLAY are unset)")


@contextlib.contextmanager
def offscreen_rendering(enabled: bool) -> Iterator[None]:
    """On a Linux machine without a display, draw frames off-screen while the block runs (variables
    the user set win): MuJoCo's default GLFW backend needs a display and EGL does not; pygame
    (classic control, Box2D) gets its dummy video driver."""
    defaults = {"MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy"} if enabled and headless() else {}
    added = [name for name in defaults if name not in os.environ]
    os.environ.update({name: defaults[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def video_recorder(env_id: str, folder: str, n_episodes: int, name_prefix: str) -> Callable[[Any], Any]:
    """A wrapper that writes the first ``n_episodes`` episodes of an env made with
    ``render_mode="rgb_array"`` to ``folder/<name_prefix>-episode-<i>.mp4``. Only those: the vector
    env resets once more after the last one, and that episode would leave a one-frame file."""
    import gymnasium as gym

    try:
        from gymnasium.wrappers import RecordVideo
        import moviepy  # noqa: F401  (RecordVideo encodes with it)
    except ImportError as error:
        raise ValueError("--video encodes with moviepy: pip install 'rl-diffcat[video]'") from error

    def record(env: gym.Env) -> gym.Env:
        if "rgb_array" not in env.metadata.get("render_modes", []):
            modes = env.metadata.get("render_modes", [])
            raise gym.error.UnsupportedMode(f"--video needs frames, but {env_id} has no rgb_array render mode (its modes: {modes})")
        return RecordVideo(env, folder, episode_trigger=lambda episode: episode < n_episodes, name_prefix=name_prefix)

    return record


# The camera of gymnasium's MuJoCo locomotion models (HalfCheetah, Hopper, ...) that follows the
# body's centre of mass. Without it frames come from a free camera that stays where the episode
# began, and a running agent leaves the picture within a few seconds.
TRACKING_CAMERA = "track"


def video_make_kwargs(env_id: str) -> Dict[str, Any]:
    """``gym.make`` arguments for recorded frames: ``rgb_array``, seen through
    :data:`TRACKING_CAMERA` when the env is a MuJoCo env whose model has one."""
    import gymnasium as gym

    make_kwargs: Dict[str, Any] = {"render_mode": "rgb_array"}
    env = gym.make(env_id, **make_kwargs)
    try:
        model = getattr(env.unwrapped, "model", None)
        if type(model).__module__.startswith("mujoco"):
            import mujoco

            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, TRACKING_CAMERA) >= 0:
                make_kwargs["camera_name"] = TRACKING_CAMERA
    finally:
        env.close()
    return make_kwargs


def written_videos(folder: str, name_prefix: str, n_episodes: int) -> List[str]:
    """The files :func:`video_recorder` wrote for the first ``n_episodes`` episodes."""
    videos = [os.path.join(folder, f"{name_prefix}-episode-{i}.mp4") for i in range(n_episodes)]
    return [video for video in videos if os.path.isfile(video)]
