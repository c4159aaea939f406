from __future__ import annotations

import pytest

from tests.steps.support import FormulaRequest, formula_request_for


@pytest.fixture
def formula_request() -> FormulaRequest:
    return formula_request_for
