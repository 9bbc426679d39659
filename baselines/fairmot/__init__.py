"""FairMOT: CenterNet detection + an embedding head, supervised classifier re-ID, JDE tracker."""

from baselines.fairmot.system import FairMOT

__all__ = ["FairMOT"]
