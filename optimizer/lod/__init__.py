"""The LOD pipeline (the product job built on the core): the scenario (decimate, unwrap,
bake, unfold, rounds), the job and its checkpoints, export (.bam/.egg/.obj/.glb), LOD
chains, skinning and the report. It drives the core (optimizer.sge) with the surface
kinds (optimizer.surface)."""
