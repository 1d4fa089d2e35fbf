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


# Set by MuJoCo's EGL backend when it is imported under MUJOCO_GL=egl; undone with the others.
_SET_BY_MUJOCO_EGL = "PYOPENGL_PLATFORM"


@contextlib.contextmanager
def offscreen_rendering(enabled: bool) -> Iterator[None]:
    """On a Linux machine without a display, draw frames off-screen while the block runs (variables
    the user set win, and those this sets are removed afterwards): MuJoCo's default GLFW backend
    needs a display and EGL does not; pygame (classic control, Box2D) gets its dummy video driver."""
    defaults = {"MUJOCO_GL": "egl", "SDL_VIDEODRIVER": "dummy"} if enabled and headless() else {}
    added = [name for name in defaults if name not in os.environ]
    absent = added + ([_SET_BY_MUJOCO_EGL] if "MUJOCO_GL" in added and _SET_BY_MUJOCO_EGL not in os.environ else [])
    os.environ.update({name: defaults[name] for name in added})
    try:
        yield
    finally:
        for name in absent:
            os.environ.pop(name, None)


@contextlib.contextmanager
def removed_if_left_empty(folder: str) -> Iterator[None]:
    """A refused or failed run leaves no empty ``--video`` folder behind (one it did not find)."""
    existed = os.path.exists(folder)
    try:
        yield
    except BaseException:
        if not existed and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        raise


def video_name_prefix(model_path: str) -> str:
    """Video names after the model they show, so that videos of other models never overwrite
    them: the file's name, or for a compare run's ``model.zip`` its run folder's."""
    stem = os.path.splitext(os.path.basename(model_path))[0]
    return os.path.basename(os.path.dirname(os.path.abspath(model_path))) if stem == "model" else stem


def video_recorder(folder: str, n_episodes: int, name_prefix: str) -> Callable[[Any], Any]:
    """A wrapper that writes the first ``n_episodes`` episodes of an env made with
    ``render_mode="rgb_array"`` to ``folder/<name_prefix>-episode-<i>.mp4``. Only those: the vector
    env resets once more after the last one, and that episode would leave a one-frame file."""
    import gymnasium as gym

    try:
        from gymnasium.wrappers import RecordVideo
        import moviepy  # noqa: F401  (RecordVideo encodes with it)
    except ImportError as error:
        raise ValueError("--video encodes with moviepy: pip install 'rl-diffcat[video]'") from error
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--video {folder}: a file of that name exists; pass a folder")

    def record(env: gym.Env) -> gym.Env:
        return RecordVideo(env, folder, episode_trigger=lambda episode: episode < n_episodes, name_prefix=name_prefix)

    return record


# The camera of gymnasium's MuJoCo locomotion models (HalfCheetah, Hopper, ...) that follows the
# body's centre of mass. Without it frames come from a free camera that stays where the episode
# began, and a running agent leaves the picture within a few seconds.
TRACKING_CAMERA = "track"


def video_make_kwargs(env_id: str) -> Dict[str, Any]:
    """``gym.make`` arguments for recorded frames: ``rgb_array``, seen through
    :data:`TRACKING_CAMERA` when the env is a MuJoCo env whose model has one. An env without
    ``rgb_array`` frames raises ``gym.error.UnsupportedMode``."""
    import gymnasium as gym

    env = gym.make(env_id)  # no render_mode: an env without frames may not even accept the argument
    try:
        modes = env.metadata.get("render_modes", [])
        if "rgb_array" not in modes:
            raise gym.error.UnsupportedMode(f"--video needs frames, but {env_id} has no rgb_array render mode (its modes: {modes})")
        make_kwargs: Dict[str, Any] = {"render_mode": "rgb_array"}
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
