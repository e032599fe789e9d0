"""An HTTP read like CrossBridge's Bitbucket Cloud calls: ``requests.get`` then ``raise_for_status``."""

from __future__ import annotations

import requests


def fetch(url):
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.text
