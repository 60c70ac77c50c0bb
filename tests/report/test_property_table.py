from optbench.properties import MD
from optbench.report.aggregate import flatten
from optbench.report.build import property_cell, property_columns


def test_unresolved_property_differences_are_not_ranked():
    """A difference inside the combined statistical error prints 'n.r.', a resolved one its value."""
    ref = {"temperature_mean_K": 300.0, "temperature_mean_K_err": 2.0, "density_g_cm3": 1.00, "density_g_cm3_err": 0.01}
    model = {"temperature_mean_K": 302.0, "temperature_mean_K_err": 2.0, "density_g_cm3": 1.10, "density_g_cm3_err": 0.01}
    row = flatten("property.water.md", MD.compare(model, ref), {})
    cols = property_columns([row])
    assert "property.water.md.temperature_mean_K.abs" in cols
    assert not any(c.endswith((".resolved", ".err", "_err")) for c in cols)
    assert property_cell(row, "property.water.md.temperature_mean_K.abs") == "n.r."
    assert property_cell(row, "property.water.md.density_g_cm3.abs") == "0.1"
    assert property_cell(row, "property.water.md.temperature_mean_K.model") == "302"
