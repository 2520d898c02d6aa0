"""coursedlc: train a course-grade model and ship it as Qualcomm DLC files."""

__version__ = "0.1.0"


def recommend(
    student: str,
    build: str = "build",
    top: int = 5,
    model: str = "float",
    soc_model: str = "60",
) -> list:
    """Rank the courses ``student`` has not taken; see :mod:`coursedlc.ranking`.

    Imported lazily so that ``import coursedlc`` stays light.
    """
    from coursedlc.ranking import recommend as _recommend

    return _recommend(student, build, top, model, soc_model)  # type: ignore[arg-type]
