"""A weather field that is coherent in space and time.

Every quantity is a smooth function of (position, time): a seasonal and daily cycle plus a few
low-frequency travelling waves (wavelengths of tens to hundreds of km) whose directions and
phases come from the seed. The waves drift with a seeded prevailing wind, so rain bands move
across the route like weather fronts. Two vehicles near each other see nearly the same weather,
and one vehicle's readings change gradually as it drives. The condition is derived from the
continuous values (precipitation, temperature, humidity, wind, cloud cover).

Time is UTC; the daily cycle uses UTC hours (GMT, close enough for the UK in winter).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

# Positions are turned into km on a local plane centred between London and Birmingham.
_LAT0, _LON0 = 52.0, -1.0
_KM_PER_DEG_LAT = 110.57
_KM_PER_DEG_LON = 111.32 * math.cos(math.radians(_LAT0))

# Urban air-quality hot spots: (lat, lon, radius km, AQI added at the centre).
_CITIES = ((51.51, -0.13, 18.0, 55.0), (52.48, -1.90, 14.0, 45.0))

CONDITIONS = ("Sunny", "Cloudy", "Rain", "Snow", "Fog")


@dataclass(frozen=True, slots=True)
class WeatherReading:
    temperature: float  # degrees C
    precipitation: float  # mm/h
    wind_speed: float  # km/h
    humidity: float  # percent
    air_quality_index: float
    cloud_cover: float  # 0..1
    condition: str


@dataclass(frozen=True, slots=True)
class _Wave:
    kx: float  # rad per km
    ky: float
    omega: float  # rad per hour (own evolution, on top of the drift)
    phase: float
    amplitude: float

    def at(self, x: float, y: float, hours: float) -> float:
        angle = self.kx * x + self.ky * y + self.omega * hours + self.phase
        return self.amplitude * math.sin(angle)


def _waves(
    rng: random.Random,
    amplitudes: tuple[float, ...],
    wavelength_km: tuple[float, float],
    period_h: tuple[float, float],
) -> tuple[_Wave, ...]:
    out = []
    for amplitude in amplitudes:
        angle = rng.uniform(0.0, 2 * math.pi)
        k = 2 * math.pi / rng.uniform(*wavelength_km)
        omega = rng.choice((-1.0, 1.0)) * 2 * math.pi / rng.uniform(*period_h)
        out.append(
            _Wave(
                k * math.cos(angle),
                k * math.sin(angle),
                omega,
                rng.uniform(0.0, 2 * math.pi),
                amplitude,
            )
        )
    return tuple(out)


class WeatherField:
    """Weather as a deterministic function of (latitude, longitude, seconds since ``start``)."""

    def __init__(self, seed: int, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        start = start.astimezone(UTC)
        rng = random.Random(f"smartcity-weather:{seed}")
        self._start_hour = start.hour + start.minute / 60 + start.second / 3600
        self._start_doy = start.timetuple().tm_yday
        # Prevailing wind from the south-west quadrant carries the pattern north-east.
        blowing_to = math.radians(rng.uniform(20.0, 80.0))  # compass bearing the air moves to
        speed = rng.uniform(20.0, 45.0)  # km/h
        self._ux = speed * math.sin(blowing_to)  # km/h east
        self._uy = speed * math.cos(blowing_to)  # km/h north
        self._temp = _waves(rng, (1.8, 1.2, 0.7), (120.0, 500.0), (10.0, 40.0))
        self._wet = _waves(rng, (0.40, 0.30, 0.20, 0.10), (40.0, 220.0), (4.0, 18.0))
        self._cloud = _waves(rng, (0.15, 0.10), (60.0, 250.0), (6.0, 24.0))
        self._humid = _waves(rng, (5.0,), (80.0, 300.0), (8.0, 30.0))
        self._wind = _waves(rng, (8.0, 5.0), (150.0, 600.0), (8.0, 36.0))
        self._offset = rng.uniform(-1.5, 1.5)  # this seed's overall warm/cold bias, degrees

    def sample(self, lat: float, lon: float, seconds: float) -> WeatherReading:
        hours = seconds / 3600.0
        x = (lon - _LON0) * _KM_PER_DEG_LON
        y = (lat - _LAT0) * _KM_PER_DEG_LAT
        # Coordinates that move with the air: the pattern drifts over the ground.
        ax, ay = x - self._ux * hours, y - self._uy * hours
        hour = (self._start_hour + hours) % 24.0
        day = self._start_doy + (self._start_hour + hours) / 24.0
        seasonal = 10.0 + 6.5 * math.cos(2 * math.pi * (day - 200.0) / 365.25)
        diurnal = math.cos(2 * math.pi * (hour - 15.0) / 24.0)  # +1 mid-afternoon, -1 at 3 am

        wet = sum(w.at(ax, ay, hours) for w in self._wet)  # about -1..1
        precipitation = 9.0 * max(0.0, wet - 0.3) ** 1.3
        cloud = min(1.0, max(0.0, 0.55 + 0.7 * wet + sum(w.at(ax, ay, hours) for w in self._cloud)))
        city = 0.0
        for clat, clon, radius, _ in _CITIES:
            dx = (lon - clon) * _KM_PER_DEG_LON
            dy = (lat - clat) * _KM_PER_DEG_LAT
            city += math.exp(-(dx * dx + dy * dy) / (radius * radius))
        temperature = (
            seasonal
            + self._offset
            + 3.0 * diurnal * (1.0 - 0.5 * cloud)
            + sum(w.at(ax, ay, hours) for w in self._temp)
            - 1.5 * max(0.0, wet)
            + 1.2 * city
        )
        humidity = min(
            100.0,
            max(
                15.0,
                76.0 + 20.0 * wet - 10.0 * diurnal + sum(w.at(ax, ay, hours) for w in self._humid),
            ),
        )
        wind = max(0.0, 16.0 + 6.0 * max(0.0, wet) + sum(w.at(x, y, hours) for w in self._wind))
        rush = math.exp(-((hour - 8.0) ** 2) / 2.0) + math.exp(-((hour - 17.5) ** 2) / 2.0)
        aqi = 0.0
        for clat, clon, radius, peak in _CITIES:
            dx = (lon - clon) * _KM_PER_DEG_LON
            dy = (lat - clat) * _KM_PER_DEG_LAT
            aqi += peak * (1.0 + 0.5 * rush) * math.exp(-(dx * dx + dy * dy) / (radius * radius))
        washout = 1.0 - 0.2 * min(precipitation, 3.0) / 3.0  # rain cleans the air a little
        aqi = (22.0 + aqi) * (1.4 - min(wind, 40.0) / 50.0) * washout
        return WeatherReading(
            temperature=min(50.0, max(-40.0, temperature)),
            precipitation=min(200.0, precipitation),
            wind_speed=min(200.0, wind),
            humidity=humidity,
            air_quality_index=min(500.0, max(0.0, aqi)),
            cloud_cover=cloud,
            condition=condition_of(temperature, precipitation, humidity, wind, cloud),
        )


def condition_of(
    temperature: float, precipitation: float, humidity: float, wind_kmh: float, cloud_cover: float
) -> str:
    """The contract's condition enum from the continuous values."""
    if precipitation >= 0.1:
        return "Snow" if temperature <= 0.5 else "Rain"
    if humidity >= 93.0 and wind_kmh < 12.0:
        return "Fog"
    if cloud_cover >= 0.6:
        return "Cloudy"
    return "Sunny"
