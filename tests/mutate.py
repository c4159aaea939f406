"""Random small edits of a JSON-like document, for "the fast check never accepts
what jsonschema rejects" property tests (tests/vault, tests/testing)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st


def mutate(
    doc: Any,
    data: st.DataObject,
    leaves: st.SearchStrategy[Any],
    new_keys: Sequence[str],
    depth: int = 0,
) -> Any:
    """Return *doc* with a few random changes: values replaced, keys added or removed, types swapped."""
    if isinstance(doc, dict) and doc and depth < 4:
        doc = dict(doc)
        key = data.draw(st.sampled_from(sorted(doc)))
        choice = data.draw(st.integers(0, 4))
        if choice == 0:
            del doc[key]
        elif choice == 1:
            doc[key] = data.draw(leaves)
        elif choice == 2:
            doc[data.draw(st.sampled_from(new_keys))] = data.draw(leaves)
        else:
            doc[key] = mutate(doc[key], data, leaves, new_keys, depth + 1)
        return doc
    if isinstance(doc, list) and doc and depth < 4:
        doc = list(doc)
        i = data.draw(st.integers(0, len(doc) - 1))
        choice = data.draw(st.integers(0, 3))
        if choice == 0:
            doc.pop(i)
        elif choice == 1:
            doc.append(copy.deepcopy(doc[i]))
        else:
            doc[i] = mutate(doc[i], data, leaves, new_keys, depth + 1)
        return doc
    return data.draw(leaves)
