"""Vendor drivers behind the :class:`~instruments.base.Stimulator` and :class:`~instruments.base.Oscilloscope`
interfaces, and the registry bench files refer to by name.

=========================  ====================================  ===========================================
name (bench ``driver:``)   instrument                            built on
=========================  ====================================  ===========================================
``keysight33500b``         Keysight 33500B generator             PyMeasure ``Instrument``/``Channel``
``rigol_dg1000z``          Rigol DG1000Z / DG800 generator       PyMeasure ``Instrument``
``keithley6221``           Keithley 6221 current source          PyMeasure ``Keithley6221``
``siglent_sdg1000x``       Siglent SDG1000X generator            PyMeasure ``Instrument``
``siglent_sdg2000x``       Siglent SDG2000X generator            PyMeasure ``Instrument``
``rigol_ds1000z``          Rigol DS1000Z oscilloscope            PyMeasure ``Instrument``
``keysight_infiniivision`` Keysight InfiniiVision 1000X/2000X    PyMeasure ``Instrument``
``tektronix_mso``          Tektronix MSO/DPO/TBS (``CURVe?``)    PyMeasure ``Instrument``
``siglent_sds1000xe``      Siglent SDS1000X-E oscilloscope       PyMeasure ``Instrument``
``siglent_sds2000x``       Siglent SDS2000X oscilloscope         PyMeasure ``Instrument``
=========================  ====================================  ===========================================
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SCOPE_DRIVERS", "STIMULATOR_DRIVERS", "driver_class", "open_driver"]

#: stimulator driver name -> "module:Class"
STIMULATOR_DRIVERS: dict[str, str] = {
    "keysight33500b": "instruments.drivers.keysight33500b:Keysight33500B",
    "rigol_dg1000z": "instruments.drivers.rigol_dg1000z:RigolDG1000Z",
    "keithley6221": "instruments.drivers.keithley6221:Keithley6221",
    "siglent_sdg1000x": "instruments.drivers.siglent_sdg:SiglentSDG1000X",
    "siglent_sdg2000x": "instruments.drivers.siglent_sdg:SiglentSDG2000X",
}
#: oscilloscope driver name -> "module:Class"
SCOPE_DRIVERS: dict[str, str] = {
    "rigol_ds1000z": "instruments.drivers.rigol_ds1000z:RigolDS1000Z",
    "keysight_infiniivision": "instruments.drivers.keysight_infiniivision:KeysightInfiniiVision",
    "tektronix_mso": "instruments.drivers.tektronix_mso:TektronixMSO",
    "siglent_sds1000xe": "instruments.drivers.siglent_sds:SiglentSDS1000XE",
    "siglent_sds2000x": "instruments.drivers.siglent_sds:SiglentSDS2000X",
}


def driver_class(name: str) -> type:
    """Return the driver class registered under ``name``."""
    from instruments.errors import BenchFileError

    target = STIMULATOR_DRIVERS.get(name) or SCOPE_DRIVERS.get(name)
    if target is None:
        known = ", ".join(sorted({*STIMULATOR_DRIVERS, *SCOPE_DRIVERS}))
        raise BenchFileError(f"unknown driver {name!r}; accepted: {known}", resource=name)
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def open_driver(driver: str, resource: str, *, timeout_s: float = 2.0, name: str | None = None) -> Any:
    """Open ``resource`` over pyvisa-py and wrap it in driver ``driver`` (nothing is sent on connect).

    Parameters
    ----------
    driver : str
        A registered driver name (see the table above).
    resource : str
        VISA resource string.
    timeout_s : float
        I/O timeout in seconds.
    name : str, optional
        Role name used in messages (``'stimulator'``); defaults to the driver name.
    """
    from instruments.transport import open_adapter

    cls = driver_class(driver)
    adapter = open_adapter(resource, timeout_s=timeout_s)
    return cls(adapter, name=name or driver, resource=resource)
