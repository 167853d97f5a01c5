"""Interactive controls that respond in a live notebook and never stall a headless run.

``ipywidgets.interact`` calls its function inside an Output widget as soon as it is displayed; executed
headless (papermill over nbclient, as ``make tutorial`` and CI run the notebooks) that call intermittently never
returns (nbclient issue 312: the run waits forever for the cell). ``live_controls`` displays the controls and
an empty output area and calls the function only when a control changes, which only a person in a live front
end does; the notebook shows the result for the default values with a plain call next to it.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
from IPython.display import display


def live_controls(function: Callable[..., object], **controls: widgets.ValueWidget) -> widgets.VBox:
    """Display ``controls`` (keyword = the function's parameter) above an output area that shows
    ``function(**values)`` each time a value changes; returns the displayed box.

    >>> seen = []
    >>> box = live_controls(lambda alpha: seen.append(alpha), alpha=widgets.FloatSlider(value=1.7))
    ... # doctest: +ELLIPSIS
    VBox(...)
    >>> seen  # displaying calls nothing (tests/test_notebooks.py moves the slider)
    []
    """
    out = widgets.Output()

    def update(_change=None) -> None:
        with out:
            out.clear_output(wait=True)
            function(**{name: control.value for name, control in controls.items()})

    for control in controls.values():
        control.observe(update, names="value")
    box = widgets.VBox([*controls.values(), out])
    display(box)
    return box
