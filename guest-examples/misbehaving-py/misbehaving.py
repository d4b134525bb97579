"""A projection that misbehaves on request, to show what the host does with
a hostile or buggy Python guest. The Python sibling of
``guest-examples/misbehaving``.

| event type              | what it does                                   |
|-------------------------|------------------------------------------------|
| ``misbehave.loop``        | loops forever (the deadline stops it)          |
| ``misbehave.memory-bomb`` | allocates without end (the memory cap stops it) |
| ``misbehave.throw``       | raises an exception that is not a ProjectionError |
| ``misbehave.clock``       | reads the clock                                |
| ``misbehave.random``      | reads a random number                          |
| ``misbehave.captured-random`` | calls ``random()`` taken at import       |
| ``misbehave.captured-clock``  | calls ``time()`` taken at import         |
| ``misbehave.datetime``    | reads ``datetime.now()``                       |
| ``misbehave.urandom``     | reads ``os.urandom()``                         |
| ``misbehave.uuid``        | makes a ``uuid.uuid4()``                       |
| ``misbehave.error``       | refuses the event (``rejected``)               |
| anything else           | counts: ``{"count": n}``                         |
"""

import os
import random
import time
import uuid
from datetime import datetime
from random import random as captured_random
from time import time as captured_time

from projector_sdk import ProjectionError, Set


class Misbehaving:
    def apply(self, state, event):
        kind = event.type
        if kind == "misbehave.loop":
            spins = 0
            while True:
                spins += 1
        if kind == "misbehave.memory-bomb":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if kind == "misbehave.throw":
            raise ValueError(f"misbehaving on purpose (event {event.id})")
        if kind == "misbehave.clock":
            return Set({"now": time.time()})
        if kind == "misbehave.random":
            return Set({"r": random.random()})
        if kind == "misbehave.captured-random":
            return Set({"r": captured_random()})
        if kind == "misbehave.captured-clock":
            return Set({"now": captured_time()})
        if kind == "misbehave.datetime":
            return Set({"now": datetime.now().isoformat()})
        if kind == "misbehave.urandom":
            return Set({"r": os.urandom(4).hex()})
        if kind == "misbehave.uuid":
            return Set({"id": str(uuid.uuid4())})
        if kind == "misbehave.error":
            raise ProjectionError.rejected(f"refusing event {event.id} on purpose")
        count = (state or {}).get("count", 0)
        return Set({"count": count + 1})
