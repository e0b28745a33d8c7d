"""The ``[pipeline]`` section: framing, units, feature options, speed and bearing inputs.

Every key has a default, so the whole section may be omitted. Features that need an input the
configuration cannot provide (shaft speed, bearing geometry) are left out of the feature set when
the pipeline is built, with a startup message — they never appear as NaN columns at runtime.
See docs/features.md for every feature name and docs/configuration.md for every key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config.parse import opt
from ..errors import ConfigError

__all__ = ["BearingGeometryConfig", "PipelineConfig", "ZoneTableConfig"]

DEFAULT_BANDS: tuple[tuple[float, ...], ...] = ((10.0, 1000.0), (1000.0, 2000.0), (2000.0, 5000.0), (5000.0, 10000.0))


@dataclass(frozen=True)
class ZoneTableConfig:
    bounds_mm_s: tuple[float, ...] = opt(doc="Velocity r.m.s. boundaries A/B, B/C, C/D in mm/s")
    provenance: str = opt("user table", "Where these numbers come from (shown with every zone result)")

    def _validate(self) -> None:
        b = self.bounds_mm_s
        if len(b) != 3 or not 0 < b[0] < b[1] < b[2]:
            raise ConfigError("bounds_mm_s", f"{list(b)!r} must be three increasing positive numbers (A/B, B/C, C/D)")


@dataclass(frozen=True)
class BearingGeometryConfig:
    n_elements: int = opt(doc="Number of rolling elements")
    element_diameter: float = opt(doc="Ball/roller diameter (same unit as pitch_diameter)")
    pitch_diameter: float = opt(doc="Pitch diameter (same unit as element_diameter)")
    contact_angle_deg: float = opt(0.0, "Contact angle in degrees")
    name: str = opt("custom", "Label for this geometry")

    def _validate(self) -> None:
        if self.n_elements < 3:
            raise ConfigError("n_elements", f"{self.n_elements!r} must be >= 3")
        if not 0 < self.element_diameter < self.pitch_diameter:
            raise ConfigError("element_diameter", "must be > 0 and smaller than pitch_diameter")
        if not 0 <= self.contact_angle_deg < 90:
            raise ConfigError("contact_angle_deg", f"{self.contact_angle_deg!r} must be in [0, 90)")


def _band_ok(band: tuple[float, ...]) -> bool:
    return len(band) == 2 and 0 <= band[0] < band[1]


@dataclass(frozen=True)
class PipelineConfig:
    enabled: bool = opt(True, "Compute vibration features for waveform blocks")
    window: int = opt(8192, "Samples per analysis window (0 = analyse each incoming block as it is)")
    overlap: float = opt(0.0, "Fraction of a window shared with the next one, 0 <= overlap < 1")
    units: Literal["g", "m/s2"] = opt("g", "Acceleration unit assumed where a block does not state one")
    velocity_band_hz: tuple[float, ...] = opt((10.0, 1000.0), "Integration band [lo, hi] for velocity r.m.s. (2-1000 Hz below 600 r/min)")
    zone_profile: str = opt("iso10816-3-group2-rigid", "Severity zone profile: a built-in name or a key of zone_tables")
    zone_tables: dict[str, ZoneTableConfig] = opt(doc="User zone profiles by name", factory=dict)
    bands_hz: tuple[tuple[float, ...], ...] = opt(DEFAULT_BANDS, "Band-power bands [[lo, hi], ...] in Hz (Welch PSD x df)")
    welch_nperseg: int = opt(1024, "Welch segment length (Hann window, 50 % overlap)")
    harmonics: int = opt(4, "Running-speed harmonics 1x..Nx (0 = off)")
    harmonic_search_bins: int = opt(2, "Search +/- this many bins around n x shaft speed")
    rpm: float = opt(0.0, "Shaft speed in r/min used when a block carries none (0 = none)")
    block_speed: bool = opt(False, "Blocks carry their own shaft speed (speed_hz); enables speed features without rpm")
    bearing: str = opt("", "Catalogue bearing (6205, 6203, 6204, 6206, 6305, 6308); empty = none")
    bearing_geometry: BearingGeometryConfig | None = opt(None, "Custom bearing geometry (instead of bearing)")
    envelope_band_hz: tuple[float, ...] = opt((), "Envelope demodulation band [lo, hi] in Hz; empty = auto [fs/8, 0.45 fs]")
    kurtogram_levels: int = opt(0, "Choose the envelope band per channel and block by kurtogram (bandwidths fs/4, fs/6, fs/8, ... down to this level); 0 = fixed envelope_band_hz")
    squared_envelope: bool = opt(False, "Use the squared envelope |z|^2 (Randall & Antoni) instead of |z|")
    slip_tolerance: float = opt(0.02, "Relative search tolerance around each bearing line (slip)")
    bearing_harmonics: int = opt(3, "Bearing line harmonics combined (root-sum-square) per defect")
    env_peak_range_hz: tuple[float, ...] = opt((5.0, 500.0), "Range [lo, hi] searched for the strongest envelope line")
    spectral_kurtosis: bool = opt(False, "Add sk_max and sk_peak_hz (spectral kurtosis of the Welch STFT)")
    cepstrum: bool = opt(False, "Add cep_peak_quefrency_s and cep_peak_amp (real cepstrum)")
    cepstrum_range_hz: tuple[float, ...] = opt((5.0, 500.0), "Family spacing range [lo, hi] in Hz searched in the cepstrum")
    orders: int = opt(0, "Order spectrum: add order_1_amp..order_N_amp (needs speed; 0 = off)")
    keep_heap: bool = opt(True, "Reuse freed work buffers instead of returning them to the OS (glibc mallopt, process-wide; ~30 % less CPU)")
    clip_level: float = opt(0.0, "Absolute level at or above which a channel is marked clipped (input unit; 0 = off)")

    def _validate(self) -> None:
        if self.window < 0 or (0 < self.window < 64):
            raise ConfigError("window", f"{self.window!r} must be 0 or >= 64 samples")
        if not 0 <= self.overlap < 1:
            raise ConfigError("overlap", f"{self.overlap!r} must be in [0, 1)")
        for key in ("velocity_band_hz", "env_peak_range_hz", "cepstrum_range_hz"):
            band = getattr(self, key)
            if not _band_ok(band):
                raise ConfigError(key, f"{list(band)!r} must be [lo, hi] with 0 <= lo < hi")
        if self.envelope_band_hz and not _band_ok(self.envelope_band_hz):
            raise ConfigError("envelope_band_hz", f"{list(self.envelope_band_hz)!r} must be [] or [lo, hi] with 0 <= lo < hi")
        for i, band in enumerate(self.bands_hz):
            if not _band_ok(band):
                raise ConfigError(f"bands_hz[{i}]", f"{list(band)!r} must be [lo, hi] with 0 <= lo < hi")
        if self.welch_nperseg < 16:
            raise ConfigError("welch_nperseg", f"{self.welch_nperseg!r} must be >= 16")
        if self.kurtogram_levels and self.envelope_band_hz:
            raise ConfigError("kurtogram_levels", "give either envelope_band_hz or kurtogram_levels, not both")
        for key in ("harmonics", "harmonic_search_bins", "orders", "kurtogram_levels"):
            if getattr(self, key) < 0:
                raise ConfigError(key, f"{getattr(self, key)!r} must be >= 0")
        if self.bearing_harmonics < 1:
            raise ConfigError("bearing_harmonics", f"{self.bearing_harmonics!r} must be >= 1")
        if self.rpm < 0:
            raise ConfigError("rpm", f"{self.rpm!r} must be >= 0 (0 = unknown)")
        if not 0 <= self.slip_tolerance < 0.2:
            raise ConfigError("slip_tolerance", f"{self.slip_tolerance!r} must be in [0, 0.2)")
        if self.clip_level < 0:
            raise ConfigError("clip_level", f"{self.clip_level!r} must be >= 0 (0 = off)")
        if self.bearing and self.bearing_geometry is not None:
            raise ConfigError("bearing", "give either bearing or bearing_geometry, not both")
        if self.bearing:
            from .bearings import lookup

            lookup(self.bearing)
        from .zones import PROFILES

        if self.zone_profile not in PROFILES and self.zone_profile not in self.zone_tables:
            known = ", ".join(sorted({*PROFILES, *self.zone_tables}))
            raise ConfigError("zone_profile", f"{self.zone_profile!r} is not a zone profile; known: {known}")
