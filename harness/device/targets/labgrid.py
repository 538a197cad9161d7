"""labgrid target: a board in a labgrid farm, named by its place, reached through the farm's
coordinator (``--target labgrid --place NAME --coordinator HOST:PORT``).

The place is acquired through the coordinator for the whole case (``start``) and released on every
exit path (``stop``, which the run calls in its ``finally``: a failure, an interrupt by SIGINT or
SIGTERM and garbage collection included; ``atexit`` for an interpreter that ends another way). A
place that is unknown to the coordinator, acquired by someone else, or whose resources are offline
(their exporter gone) is refused with the coordinator's reason (:class:`PlaceRefused`).

Transport: the place's ``NetworkSerialPort`` (a ser2net port an exporter serves, or any TCP serial
server an exporter names): ``socket://host:port`` for ``protocol: raw``, ``rfc2217://host:port``
for RFC 2217 (labgrid's default, which ser2net speaks).

Flashing: through the place's flashing resource, OpenOCD on a debugger the place holds (labgrid's
``OpenOCDDriver`` bound to its ``NetworkUSBDebugger``/``USBDebugger``; the part's OpenOCD target
config from the place's tag ``openocd_target``, e.g. ``nrf52.cfg``, the adapter's from
``openocd_interface``, default ``cmsis-dap.cfg``); a place without one is refused unless
``--no-flash`` says to test the firmware already on it. labgrid is an optional extra
(``pip install 'cattle-hil[labgrid]'``): without it the target is unavailable, saying so.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.device.targets.base import Target, TargetUnavailable, build_firmware, check_image

__all__ = [
    "DEFAULT_COORDINATOR",
    "FLASH_RESOURCES",
    "LabgridTarget",
    "PlaceLease",
    "PlaceRefused",
    "PlaceResources",
    "coordinator_address",
    "flash_through_place",
    "labgrid_available",
    "serial_url",
]

DEFAULT_COORDINATOR = "127.0.0.1:20408"
"""labgrid's own default coordinator address (``LG_COORDINATOR`` overrides it, as in labgrid-client)."""
FLASH_RESOURCES = ("NetworkUSBDebugger", "USBDebugger")
"""Resource classes of a place that the target flashes through (with labgrid's OpenOCDDriver)."""


class PlaceRefused(ConnectionError):
    """The coordinator refused the place (unknown, acquired by someone else, resources offline), or
    the place lacks what the case needs; the message gives the coordinator's reason."""


def labgrid_available() -> str:
    """'' when labgrid can be imported, else why not (with how to install it)."""
    try:
        import labgrid.remote.client  # noqa: F401
    except ImportError as exc:
        return f"labgrid is not installed ({exc}): pip install 'cattle-hil[labgrid]'"
    return ""


def coordinator_address(given: str | None) -> str:
    """The coordinator to use: the one given, else ``LG_COORDINATOR``, else labgrid's default."""
    import os

    return given or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


@dataclass(frozen=True)
class PlaceResources:
    """What an acquired place holds, as the coordinator reports it."""

    place: str
    serial: dict[str, Any] | None
    """the NetworkSerialPort's parameters (host, port, speed, protocol), or None"""
    flasher: tuple[str, dict[str, Any]] | None
    """(class, parameters) of the first flashing resource (FLASH_RESOURCES), or None"""
    tags: dict[str, str]
    offline: tuple[str, ...]
    """resources of the place whose exporter reports them unavailable"""


def serial_url(params: dict[str, Any], where: str) -> str:
    """The pyserial URL of a NetworkSerialPort's parameters: ``socket://`` for ``protocol: raw``,
    ``rfc2217://`` for ``rfc2217`` (labgrid's default). Raises PlaceRefused for anything else."""
    host, port = params.get("host"), params.get("port")
    if not host or not isinstance(port, int) or port <= 0:
        raise PlaceRefused(f"{where}: NetworkSerialPort without a host and port ({params})")
    protocol = params.get("protocol", "rfc2217")
    scheme = {"raw": "socket", "rfc2217": "rfc2217"}.get(str(protocol))
    if scheme is None:
        raise PlaceRefused(f"{where}: NetworkSerialPort protocol {protocol!r}: known are raw and rfc2217")
    return f"{scheme}://{host}:{port}"


class PlaceLease:
    """One place of a labgrid coordinator, acquired by :meth:`acquire` and released by
    :meth:`release` (safe to call twice; also at garbage collection and interpreter exit)."""

    def __init__(self, coordinator: str | None, place: str) -> None:
        self.coordinator = coordinator_address(coordinator)
        self.place = place
        self.session: Any = None
        self.acquired = False
        self._finalizer: weakref.finalize | None = None
        self._atexit = functools.partial(_release, None, place)

    def _connect(self) -> None:
        if self.session is None:
            self.session = _open_session(self.coordinator)

    def check(self, *, need_flasher: bool = False) -> PlaceResources:
        """Ask the coordinator about the place without acquiring it: refuse (PlaceRefused) a place
        that is unknown, acquired by someone else, or has no resources online."""
        self._connect()
        place = self._place()
        if place.acquired and not self.acquired:
            raise PlaceRefused(f"labgrid place {self.place} (coordinator {self.coordinator}) is already acquired by "
                               f"{place.acquired} (the coordinator's record: it is not handed out until its holder "
                               "releases it)")
        return self._resources(place, need_flasher=need_flasher, acquired=False)

    def _place(self) -> Any:
        places = self.session.places
        if self.place not in places:  # exact names only (labgrid-client matches substrings)
            raise PlaceRefused(f"labgrid place {self.place}: unknown to the coordinator {self.coordinator} (it has "
                               f"{', '.join(sorted(places)) or 'no places'})")
        return places[self.place]

    def _resources(self, place: Any, *, need_flasher: bool, acquired: bool) -> PlaceResources:
        where = f"labgrid place {self.place} (coordinator {self.coordinator})"
        entries: dict[str, Any] = {}
        if acquired:
            try:
                for (name, cls), entry in self.session.get_target_resources(place).items():
                    entries[f"{cls}/{name}"] = entry
            except Exception as exc:
                raise PlaceRefused(f"{where}: {exc}") from None
        else:  # what it would get: the exporters' resources its matches name
            for exporter, groups in sorted(self.session.resources.items()):
                for group_name, group in sorted(groups.items()):
                    for res_name, entry in sorted(group.items()):
                        if place.getmatch((exporter, group_name, entry.cls, res_name)) is not None:
                            entries[f"{entry.cls}/{exporter}/{group_name}/{res_name}"] = entry
        if not entries:
            raise PlaceRefused(f"{where}: no resource of the place is known to the coordinator: its exporter is "
                               "offline, or the place matches nothing (labgrid-client -p PLACE add-match ...)")
        offline = tuple(k for k, e in entries.items() if not e.avail)
        serials = [e for e in entries.values() if e.cls == "NetworkSerialPort"]
        flashers = [(e.cls, dict(e.args)) for e in entries.values() if e.cls in FLASH_RESOURCES]
        res = PlaceResources(self.place, dict(serials[0].args) if serials else None,
                             flashers[0] if flashers else None, dict(place.tags), offline)
        if res.serial is None:
            raise PlaceRefused(f"{where}: no NetworkSerialPort among its resources ({', '.join(entries)}): nothing "
                               "to talk to the board through")
        if any(k.startswith("NetworkSerialPort/") for k in offline):
            raise PlaceRefused(f"{where}: its NetworkSerialPort is offline (the exporter reports it unavailable)")
        if need_flasher and res.flasher is None:
            raise PlaceRefused(f"{where}: no flashing resource ({' or '.join(FLASH_RESOURCES)}) among its resources "
                               f"({', '.join(entries)}): give --no-flash to test the firmware already on the board")
        return res

    def acquire(self, *, need_flasher: bool = False) -> PlaceResources:
        """Acquire the place through the coordinator and return its resources. Raises PlaceRefused
        with the coordinator's reason."""
        try:
            self.check(need_flasher=need_flasher)
            from labgrid.remote.client import Error as LabgridError

            try:
                _quietly(self.session, self.place, self.session.acquire)
            except LabgridError as exc:
                raise PlaceRefused(f"labgrid place {self.place} (coordinator {self.coordinator}): {exc}") from None
            self.acquired = True
            self._finalizer = weakref.finalize(self, _release, self.session, self.place)
            self._atexit = functools.partial(_release, self.session, self.place)
            atexit.register(self._atexit)
            return self._resources(self._place(), need_flasher=need_flasher, acquired=True)
        except BaseException:
            self.release()  # one connection per process at a time: never leave a refused one open
            raise

    def release(self) -> None:
        """Release the place (if this lease holds it) and close the connection; safe to call twice."""
        if self.session is None:
            return
        try:
            if self.acquired:
                _release(self.session, self.place)
                self.acquired = False
                if self._finalizer is not None:
                    self._finalizer.detach()
                atexit.unregister(self._atexit)
        finally:
            _close_session(self.coordinator)
            self.session = None


def _release(session: Any, place: str) -> None:
    if session is None:
        return
    from labgrid.remote.client import Error as LabgridError

    try:
        _quietly(session, place, session.release)
    except LabgridError as exc:
        if "is not acquired" not in str(exc):
            raise


_SESSIONS: dict[str, list[Any]] = {}
"""coordinator -> [ClientSession, leases using it]: one connection per coordinator and process (the
coordinator refuses a second client stream on a connection gRPC shares between channels)."""


def _open_session(coordinator: str) -> Any:
    if coordinator in _SESSIONS:
        _SESSIONS[coordinator][1] += 1
        return _SESSIONS[coordinator][0]
    why = labgrid_available()
    if why:
        raise TargetUnavailable(why)
    from labgrid.remote.client import start_session

    try:
        session = start_session(coordinator, extra={"args": argparse.Namespace(
            place=None, allow_unmatched=False, kick=False)})
    except Exception as exc:  # labgrid's ServerError, grpc errors, ConnectionRefusedError
        raise PlaceRefused(f"labgrid coordinator {coordinator}: cannot connect ({type(exc).__name__}: "
                           f"{exc})") from None
    _SESSIONS[coordinator] = [session, 1]
    return session


def _close_session(coordinator: str) -> None:
    entry = _SESSIONS.get(coordinator)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _SESSIONS[coordinator]
    session = entry[0]
    try:
        session.loop.run_until_complete(session.stop())
        session.loop.run_until_complete(session.close())
    except Exception:  # a coordinator that went away: nothing left to close
        return


def _quietly(session: Any, place: str, action: Any) -> Any:
    """Run a ClientSession command (``acquire``, ``release``) for ``place``; what labgrid prints
    ("acquired place X") goes nowhere, so that stdout keeps only what the harness prints
    (``hil run --json``)."""
    import contextlib
    import io

    session.args.place = place
    with contextlib.redirect_stdout(io.StringIO()):
        return session.loop.run_until_complete(action())


def flash_through_place(coordinator: str, place: str, res: PlaceResources, elf: Path) -> None:
    """Flash ``elf`` through the place's flashing resource with labgrid's OpenOCDDriver: OpenOCD
    with the adapter's interface config (the place's tag ``openocd_interface``, default
    ``cmsis-dap.cfg``) and the part's target config (tag ``openocd_target``, e.g. ``nrf52.cfg``),
    ``program ELF verify reset``. Raises PlaceRefused when the place has no flashing resource or
    no ``openocd_target`` tag."""
    import os

    where = f"labgrid place {place} (coordinator {coordinator})"
    if res.flasher is None:
        raise PlaceRefused(f"{where}: no flashing resource ({' or '.join(FLASH_RESOURCES)}): give --no-flash")
    part = res.tags.get("openocd_target")
    if not part:
        raise PlaceRefused(f"{where}: flashing through its {res.flasher[0]} needs the part's OpenOCD target config "
                           "as the place's tag openocd_target (labgrid-client -p PLACE set-tags "
                           "openocd_target=nrf52.cfg)")
    from labgrid import Target as LabgridTarget_
    from labgrid.driver import OpenOCDDriver
    from labgrid.resource.remote import RemotePlace

    os.environ["LG_COORDINATOR"] = coordinator  # labgrid's RemotePlace finds its coordinator here
    t = LabgridTarget_(f"hil-{place}")
    RemotePlace(t, name=place)
    driver = OpenOCDDriver(t, name=None, config=[], interface_config=res.tags.get("openocd_interface", "cmsis-dap.cfg"),
                           load_commands=[f"source [find target/{part}]", "init", "program {filename} verify reset",
                                          "shutdown"])
    t.activate(driver)
    try:
        driver.load(str(elf))
    finally:
        t.cleanup()


class LabgridTarget(Target):
    """A board of a labgrid farm, by place; the place is held from :meth:`start` to :meth:`stop`."""

    kind = "labgrid"

    def __init__(self, board: str, variant: str, place: str, coordinator: str | None = None,
                 elf: Path | None = None, flash: bool = True) -> None:
        super().__init__(board, variant)
        self.place = place
        self.coordinator = coordinator_address(coordinator)
        self.elf = elf
        self.flash = flash
        self.lease: PlaceLease | None = None
        self.url: str | None = None

    @property
    def description(self) -> str:
        return f"labgrid:{self.place}:{self.board}/{self.variant}"

    def start(self) -> str:
        """Acquire the place, flash the image through its flashing resource (unless ``flash`` is
        False) and return the URL of its NetworkSerialPort."""
        if self.lease is None:
            self.lease = PlaceLease(self.coordinator, self.place)
        try:
            if self.flash and self.elf is None:
                self.elf = build_firmware(self.board, self.variant)
            if self.elf is not None:
                check_image(self.elf, self.board)
            res = self.lease.acquire(need_flasher=self.flash)
            assert res.serial is not None
            self.url = serial_url(res.serial, f"labgrid place {self.place}")
            if self.flash:
                assert self.elf is not None
                flash_through_place(self.coordinator, self.place, res, self.elf)
        except BaseException:
            self.stop()
            raise
        return self.url

    def reset(self) -> str:
        """A place without a power or reset resource cannot be reset from here: the URL again."""
        if self.url is None:
            return self.start()
        return self.url

    def stop(self) -> None:
        if self.lease is not None:
            lease, self.lease = self.lease, None
            lease.release()
