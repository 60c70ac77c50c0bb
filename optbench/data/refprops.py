"""Moved to optbench.properties.reference: reference properties are computed by the property objects,
so their generation lives with them, above the data layer. This module keeps the old import path and
`python -m optbench.data.refprops [--redo NAME ...] DIR` working; nothing in optbench imports it."""

from optbench.properties.reference import (  # noqa: F401
    compute_reference_properties,
    fill_reference_properties,
    main,
    redo_reference_properties,
)

if __name__ == "__main__":
    raise SystemExit(main())
