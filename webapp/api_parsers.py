"""The API's JSON parser: DRF's, with the two kinds of JSON Python cannot read answered as 400s that
say what is wrong instead of a bare parse error or a server error."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.utils import json


class _LongInteger:
    """Stands in the parsed document for an integer with more digits than Python converts."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _long_integers(data: Any) -> list[tuple[list[str | int], _LongInteger]]:
    """Where the _LongInteger markers are in `data` (paths of keys and list indexes), in order."""
    found: list[tuple[list[str | int], _LongInteger]] = []
    todo: list[tuple[list[str | int], Any]] = [([], data)]  # no recursion: data may nest ~1000 deep
    while todo:
        path, value = todo.pop()
        if isinstance(value, _LongInteger):
            found.append((path, value))
        elif isinstance(value, Mapping):
            todo.extend((path + [key], item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            todo.extend((path + [index], item) for index, item in reversed(list(enumerate(value))))
    return found


def _place(path: list[str | int]) -> str:
    """netcore's way of naming a place in a document: networks.front.subnet, routes[0]."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


class JSONParser(parsers.JSONParser):
    """JSON bodies. An integer of more digits than Python converts to int (sys.get_int_max_str_digits,
    4300) is refused as invalid input of the field it is in, naming its place (json.loads alone fails
    the whole body with no place); nesting deeper than the decoder's recursion goes is a parse error
    (json.loads raises RecursionError, which DRF does not catch: a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        most = sys.get_int_max_str_digits()  # 0: no limit
        long_found = False

        def parse_int(text: str) -> int | _LongInteger:
            nonlocal long_found
            if most and len(text.lstrip("-")) > most:
                long_found = True
                return _LongInteger(len(text.lstrip("-")))
            return int(text)

        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                parse_constant=json.strict_constant if self.strict else None,
                parse_int=parse_int,
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON parse error - arrays and objects nested too deeply") from None
        if long_found:
            fields: dict[str, list[str]] = {}
            for path, number in _long_integers(data):
                if path and isinstance(path[0], str):
                    field, place = path[0], _place(path[1:])
                else:  # the body itself, or a list
                    field, place = "non_field_errors", _place(path)
                message = f"an integer of {number.digits} digits: at most {most} are accepted"
                fields.setdefault(field, []).append(f"{place}: {message}" if place else message)
            raise ValidationError(fields)
        return data
